/** A string as a YAML scalar: plain when YAML reads it back as the same string, else double-quoted. */
export function quoteYaml(s: string): string {
  const plain =
    /^[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:-]*$/.test(s) &&
    !/:$/.test(s) &&
    !/^(true|false|yes|no|on|off|null|~|[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+)$/i.test(
      s,
    );
  return plain ? s : JSON.stringify(s);
}
