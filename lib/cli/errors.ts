/** Bad command-line input: the CLI exits 2 with the message. */
export class UsageError extends Error {
  override name = "UsageError";
}
