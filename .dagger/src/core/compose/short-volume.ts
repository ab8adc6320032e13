/** Short-syntax volumes (`./conf:/etc/conf:ro`), split as compose splits them. */

/** Where a short-syntax volume's source ends: the first `:` outside `${…}` (`${CONF:-./a}:/b` → after `}`). */
export function sourceEnd(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "{") (depth++, i++);
    else if (text[i] === "}" && depth > 0) depth--;
    else if (text[i] === ":" && depth === 0) return i;
  }
  return text.length;
}
