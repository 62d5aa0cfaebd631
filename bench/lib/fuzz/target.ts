/** What one fuzz target reports. */
export interface TargetReport {
  target: string;
  inputs: number;
  /** Answers by class (HTTP: `2xx`, `4xx`, `5xx`, `503-retry-after`; TFTP: `error`, `data`, `oack`; wire: `closed`, `answered`). */
  answers: Record<string, number>;
  /** Unexpected server errors (HTTP 5xx other than a 503 busy answer with Retry-After). */
  serverErrors: number;
  /** A few of the inputs that got a server error, to replay. */
  samples: string[];
}

export function newReport(target: string): TargetReport {
  return { target, inputs: 0, answers: {}, serverErrors: 0, samples: [] };
}

export function count(r: TargetReport, answer: string): void {
  r.answers[answer] = (r.answers[answer] ?? 0) + 1;
}

/** Runs `worker` on `concurrency` loops until `deadline` (ms since epoch) or `stop()` says so. */
export async function loop(concurrency: number, deadline: number, stop: () => boolean, worker: (i: number) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline && !stop()) await worker(i++);
    }),
  );
}
