/** `--name value` from the command line, else `dflt` (the benches' flags are all of this form, or bare switches read with `process.argv.includes`). */
export function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
