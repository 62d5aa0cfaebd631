/**
 * Shell-like word splitting for kickstart lines and command templates:
 * whitespace separates, '...' and "..." group, a backslash outside single
 * quotes escapes the next character. No expansion of any kind.
 */
import { InvalidInputError } from './errors.js';

/** Input with a quote that never closes (code `invalid_input`). */
export class UnclosedQuoteError extends InvalidInputError {
  constructor(readonly quote: '"' | "'") {
    super(`unterminated ${quote} quote`, { quote });
  }
}

/** The words of `text`; an unclosed quote throws UnclosedQuoteError. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new UnclosedQuoteError(quote);
  if (inWord) words.push(cur);
  return words;
}
