import { expect } from 'chai';

/** The error `p` rejects with; fails the test when `p` resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error & { status?: number; code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { status?: number; code?: string };
  }
  expect.fail('expected a rejection');
}
