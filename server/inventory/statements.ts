/**
 * Prepared statements, made once per SQL text and connection. better-sqlite3
 * does not cache: `db.prepare(sql)` compiles the SQL again on every call.
 * A cached statement lives as long as its connection (closing the database
 * finalizes them all).
 */
import type Database from 'better-sqlite3';

export type Statement = Database.Statement<unknown[], unknown>;

/** Returns `sql`'s statement on `db`, preparing it on first use. */
export type StatementCache = (sql: string) => Statement;

export function statementCache(db: Database.Database): StatementCache {
  const cache = new Map<string, Statement>();
  return (sql) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  };
}
