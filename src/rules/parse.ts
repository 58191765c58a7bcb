import { parseDocument } from 'yaml';
import { RulesError } from './errors.js';

/**
 * YAML or JSON text → the raw document. A `.json` filename is parsed as JSON; anything else as
 * YAML 1.2 (a superset of JSON) with `<<` merge keys. Syntax errors, duplicate keys and multiple
 * documents are RulesErrors.
 */
export function parseConfigText(text: string, opts: { filename?: string } = {}): unknown {
  text = text.replace(/^\uFEFF/, ''); // a byte-order mark from some editors
  if (opts.filename?.toLowerCase().endsWith('.json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new RulesError([{ path: '', message: `invalid JSON: ${(err as Error).message}` }]);
    }
  }
  // merge: `<<: *defaults` works as in CI configs people already write.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    throw new RulesError(
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        return { path: '', message: `invalid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (value === null || value === undefined) throw new RulesError([{ path: '', message: 'the configuration is empty' }]);
  return value;
}
