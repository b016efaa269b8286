import { directKernel, type KernelPort } from "../../lib/kernel/index.ts";

/** The real kernel port, recording each apply's `only` (undefined: a whole apply) in `applies`: how many kernel transactions a service call made, and of which farms. */
export function countingKernel(applies: (readonly string[] | undefined)[]): KernelPort {
  return {
    ...directKernel,
    applyFarms: (input, opts) => {
      applies.push(opts.only);
      return directKernel.applyFarms(input, opts);
    },
  };
}
