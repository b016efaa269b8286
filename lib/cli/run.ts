/** The CLI's TypeScript entry, for running it without the prebuilt bundle (bench/cli-start.ts). */
import { main } from "./main.ts";

process.exitCode = await main(process.argv);
