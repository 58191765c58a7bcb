// Where a problem is: turns a config path such as `rules[1].match` into a line of the YAML text.
import { parseDocument, isMap, isSeq } from '/ui/vendor/yaml/index.js';

/** `rules[1].match` → ['rules', 1, 'match']; `$` or '' → []. */
export function splitPath(path) {
  const out = [];
  for (const m of String(path ?? '').matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out.filter((s) => s !== '$');
}

function lineOf(text, offset) {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === '\n') line++;
  return line;
}

/**
 * The 1-based line a path points at: the key of the deepest part of the path that exists
 * (a missing field points at its parent, where it should be added).
 */
export function lineForPath(text, path) {
  const doc = parseDocument(text);
  let node = doc.contents;
  let range = node?.range ?? null;
  for (const seg of splitPath(path)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(p.key?.value ?? p.key) === String(seg));
      if (!pair) break;
      range = pair.key?.range ?? pair.value?.range ?? range;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
      node = node.items[seg];
      range = node.range ?? range;
    } else {
      break;
    }
  }
  return range ? lineOf(text, range[0]) : 1;
}

/** YAML syntax problems, each with its line; an empty list when the text parses. */
export function syntaxProblems(text) {
  const doc = parseDocument(text, { prettyErrors: true });
  return doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0], line: e.linePos?.[0]?.line ?? 1 }));
}

export function parseConfig(text) {
  return parseDocument(text).toJS();
}
