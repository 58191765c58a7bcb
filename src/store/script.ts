import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, type Redis } from 'ioredis';

/** Values a script file gets as `local NAME = …` ahead of its text (key prefixes, field lists). */
export type ScriptConstants = Record<string, string | readonly string[]>;

/**
 * A Lua script run by its sha (EVALSHA; EVAL once when Redis does not know it yet), so a hot path
 * sends a 40-character sha instead of the script's text. The one script runner: every Lua script
 * of slipway runs through it.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly src: string) {
    this.sha = createHash('sha1').update(src).digest('hex');
  }

  /**
   * A script from a `.lua` file: its `--- @include "name"` lines are replaced by
   * `includes/name.lua` of the same folder (each once, as BullMQ's command files do), and the
   * constants come first.
   */
  static fromFile(url: URL, constants: ScriptConstants = {}): LuaScript {
    const file = fileURLToPath(url);
    const included = new Set<string>();
    const expand = (text: string): string =>
      text.replace(/^--- @include "([\w-]+)"$/gm, (_line, name: string) => {
        if (included.has(name)) return '';
        included.add(name);
        return expand(readFileSync(path.join(path.dirname(file), 'includes', `${name}.lua`), 'utf8'));
      });
    const head = Object.entries(constants).map(([name, v]) => `local ${name} = ${typeof v === 'string' ? luaString(v) : `{ ${v.map(luaString).join(', ')} }`}`);
    return new LuaScript(`${head.join('\n')}\n${expand(readFileSync(file, 'utf8'))}`);
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.sendCommand(new ScriptCall('evalsha', this.sha, keys, args));
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return redis.sendCommand(new ScriptCall('eval', this.src, keys, args));
    }
  }
}

function luaString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * EVAL/EVALSHA written as one flat RESP string. ioredis's own path copies a command's arguments
 * with Array#flat and builds the wire text by repeated `+=`, which for a group commit's few
 * hundred arguments was a measurable share of a delivery's CPU (bench/README.md); one `join` is not.
 */
class ScriptCall extends Command {
  private readonly text: string;
  constructor(name: 'eval' | 'evalsha', script: string, keys: readonly string[], args: readonly (string | number)[]) {
    super(name, [], { replyEncoding: 'utf8' });
    const parts = [`*${keys.length + args.length + 3}\r\n$${name.length}\r\n${name}\r\n$${Buffer.byteLength(script)}\r\n${script}\r\n`];
    for (const a of [String(keys.length), ...keys, ...args]) {
      const v = String(a);
      parts.push(`$${Buffer.byteLength(v)}\r\n${v}\r\n`);
    }
    this.text = parts.join('');
  }
  override toWritable(): string {
    return this.text;
  }
}
