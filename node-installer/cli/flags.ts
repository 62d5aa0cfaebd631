/** Flag parsing shared by the `kickswarm-install` subcommands. */
import { InvalidInputError } from '../../protocol/errors.js';

/** A whole or decimal number for `flag`; anything else is InvalidInputError. */
export function numberFlag(flag: string, value: string, integer: boolean): number {
  const re = integer ? /^\d{1,9}$/ : /^\d{1,9}(\.\d{1,6})?$/;
  if (!re.test(value.trim())) {
    throw new InvalidInputError(`${flag} must be a ${integer ? 'whole ' : ''}number, not ${JSON.stringify(value.slice(0, 40))}`);
  }
  return Number(value);
}
