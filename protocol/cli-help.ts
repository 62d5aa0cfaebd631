/**
 * The help-text convention of both CLIs (`kickswarm`, `kickswarm-install`).
 * How every option's help line writes its choices and default, one way for
 * all commands: `description (one of: a, b; default: a)`. Choices come from
 * commander's `.choices()` or a trailing `(one of: ...)` in the description;
 * the default from the option's default value (or its description), unless
 * the text already says `default:`.
 */
import type { Help, Option } from 'commander';

function defaultText(o: Option): string | undefined {
  if (o.defaultValueDescription) return o.defaultValueDescription;
  const v: unknown = o.defaultValue;
  if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

export function optionDescription(o: Option): string {
  let text = o.description ?? '';
  const parts: string[] = [];
  const m = /\s*\(one of: ([^)]*)\)$/.exec(text);
  if (m) {
    text = text.slice(0, m.index);
    parts.push(`one of: ${m[1]}`);
  } else if (o.argChoices) {
    parts.push(`one of: ${o.argChoices.join(', ')}`);
  }
  const def = /\bdefault:/.test(text) ? undefined : defaultText(o);
  if (def !== undefined) parts.push(`default: ${def}`);
  return parts.length ? `${text} (${parts.join('; ')})` : text;
}

/** For `program.configureHelp()`; subcommands made afterwards inherit it. */
export const HELP_CONFIG: Partial<Help> = { optionDescription, showGlobalOptions: true };
