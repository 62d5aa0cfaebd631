/** SQLite schema, applied in order; `user_version` records how far a database is. */
export const MIGRATIONS: string[] = [
  `CREATE TABLE nodes (
     name TEXT PRIMARY KEY,
     mac TEXT NOT NULL UNIQUE,
     ip TEXT NOT NULL UNIQUE,
     uuid TEXT UNIQUE,
     appliance TEXT NOT NULL,
     rack INTEGER,
     rank INTEGER,
     attrs TEXT NOT NULL DEFAULT '{}',
     boot_action TEXT NOT NULL DEFAULT 'os',
     install TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX nodes_appliance ON nodes(appliance);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE ON UPDATE CASCADE,
     at TEXT NOT NULL,
     kind TEXT NOT NULL,
     message TEXT NOT NULL,
     data TEXT
   );
   CREATE INDEX events_node ON events(node, id);
   CREATE TABLE settings (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );`,
  // Nodes registered by discovery wait for an admin's approval before they get a kickstart.
  `ALTER TABLE nodes ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;`,
  `CREATE TABLE sessions (
     node TEXT PRIMARY KEY REFERENCES nodes(name) ON DELETE CASCADE ON UPDATE CASCADE,
     token TEXT NOT NULL UNIQUE,
     action TEXT NOT NULL,
     mac TEXT NOT NULL,
     ip TEXT NOT NULL,
     opened_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     upload_at TEXT,
     secrets_at TEXT
   );`,
  // The installer's own log lines (a bounded ring per node) and the kickstart each node was last served (secrets masked).
  `CREATE TABLE install_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE ON UPDATE CASCADE,
     at TEXT NOT NULL,
     line TEXT NOT NULL
   );
   CREATE INDEX install_log_node ON install_log(node, id);
   CREATE TABLE served_kickstarts (
     node TEXT PRIMARY KEY REFERENCES nodes(name) ON DELETE CASCADE ON UPDATE CASCADE,
     at TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     text TEXT NOT NULL
   );`,
];
