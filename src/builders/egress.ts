import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { exec } from './exec.js';

/**
 * What RUN steps of a dedicated build may reach (`SLIPWAY_BUILD_EGRESS`):
 * - `public`: the internet, through NAT on the build's own bridge, but never the host, other builds,
 *   private, shared, link-local, multicast or reserved ranges, nor slipway's own endpoints;
 * - `none`: nothing at all (refused at once, not dropped);
 * - `allow`: only the listed CIDRs and host names (resolved when the engine starts), and DNS.
 */
export type EgressPolicy = { kind: 'public' } | { kind: 'none' } | { kind: 'allow'; entries: string[] };

/** A host:port slipway itself listens on or talks to (its Redis, API, registry): never reachable from a build. */
export interface Endpoint {
  host: string;
  port: number;
}

export class EgressPolicyError extends Error {
  override readonly name = 'EgressPolicyError';
  readonly path = 'SLIPWAY_BUILD_EGRESS';
}

const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses `public`, `none` or a comma-separated allow-list of IPv4 CIDRs, addresses and host names. */
export function parseEgressPolicy(raw: string | undefined): EgressPolicy {
  const text = (raw ?? '').trim();
  if (text === '' || text === 'public') return { kind: 'public' };
  if (text === 'none') return { kind: 'none' };
  const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
  for (const entry of entries) {
    if (entry === 'public' || entry === 'none') throw new EgressPolicyError(`"${entry}" cannot be part of an allow-list; use it alone`);
    if (!isCidr(entry) && !(HOST_NAME.test(entry) && !/^[\d.]+$/.test(entry))) {
      throw new EgressPolicyError(`"${entry}" is neither an IPv4 address or CIDR (10.1.0.0/16) nor a host name (registry.npmjs.org)`);
    }
  }
  if (entries.length === 0) throw new EgressPolicyError('is empty: use public, none, or a comma-separated allow-list');
  return { kind: 'allow', entries };
}

function isCidr(text: string): boolean {
  const [addr, bits, extra] = text.split('/');
  if (extra !== undefined || !addr || isIP(addr) !== 4) return false;
  return bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32);
}

export function describePolicy(policy: EgressPolicy): string {
  return policy.kind === 'allow' ? `allow-list (${policy.entries.join(', ')})` : policy.kind;
}

/** The narrower of the operator's policy and a repository's `builder.network`. */
export function narrowPolicy(policy: EgressPolicy, network: 'default' | 'none' | undefined): EgressPolicy {
  return network === 'none' ? { kind: 'none' } : policy;
}

/** Ranges `public` never reaches, each with the words the build log uses for it. */
const DENIED_RANGES: readonly [string, string][] = [
  ['0.0.0.0/8', 'this-network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared-address'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];

/** Where every dedicated engine's bridge lives (see host.ts createBridge). */
export const BUILD_BRIDGES = '10.231.0.0/16';

const COMMENT_PREFIX = 'slipway:';

/**
 * A slot's name in rule comments: its directory's name behind a hash of the slots directory, so a
 * reaper only ever removes rules of its own data dir's slots.
 */
export function slotTag(slot: string): string {
  return `${dirTag(path.dirname(slot))}.${path.basename(slot)}`;
}

/** The tag prefix of every slot under `slotsDir`. */
export function dirTag(slotsDir: string): string {
  return createHash('sha256').update(path.resolve(slotsDir)).digest('hex').slice(0, 8);
}

/** One iptables rule of a build: table, chain, match arguments, and its label (what it refuses). */
interface RuleSpec {
  table: 'filter' | 'nat';
  chain: 'INPUT' | 'FORWARD' | 'POSTROUTING';
  args: string[];
  /** `deny:<what>` for a refusing rule (counted for the build log), else `allow:<what>`. */
  label: string;
}

export interface EgressOptions {
  policy: EgressPolicy;
  /** The build's bridge (`slwb<k>`) and its subnet. */
  bridge: string;
  subnet: string;
  /** The slot's tag (see slotTag): every rule's comment carries it, so rules of a crashed build can be found. */
  slot: string;
  /** slipway's own endpoints (Redis, API, registry); those on this host are refused with the host itself. */
  protect?: readonly Endpoint[];
  /** Overridable for tests: the resolver configuration and host name lookups. */
  resolvConf?: string;
  resolve?: (host: string) => Promise<string[]>;
  hostAddresses?: () => Promise<string[]>;
}

/** A refusing rule whose counters show it refused something during the build. */
export interface Refusal {
  what: string;
  packets: number;
}

/** The iptables rules of one running dedicated engine (removed with its slot), and what they refused. */
export interface Egress {
  policy: EgressPolicy;
  /** What the policy refused so far, by kind of destination. */
  refusals(): Promise<Refusal[]>;
}

const defaultResolve = async (host: string) => (await lookup(host, { all: true, family: 4 })).map((a) => a.address);

async function defaultHostAddresses(): Promise<string[]> {
  const res = await exec('ip', ['-o', '-4', 'addr', 'show']);
  return [...res.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
}

/** IPv4 nameservers of a resolv.conf that a container can use (dockerd drops loopback ones). */
export function nameservers(resolvConf: string): string[] {
  return [...resolvConf.matchAll(/^\s*nameserver\s+(\S+)/gm)]
    .map((m) => m[1]!)
    .filter((ns) => isIP(ns) === 4 && !ns.startsWith('127.'));
}

/**
 * The rules for one build, in evaluation order. Everything is keyed on the build's own bridge
 * (`-i slwb<k>`), so docker0, the host engine's chains and other bridges are never matched.
 */
export async function planRules(o: EgressOptions): Promise<RuleSpec[]> {
  const inBridge = ['-i', o.bridge];
  const reject = ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'];
  const rules: RuleSpec[] = [];
  const dns = o.policy.kind === 'none' ? [] : nameservers(o.resolvConf ?? (await readFile('/etc/resolv.conf', 'utf8').catch(() => '')));
  for (const ns of dns) {
    for (const proto of ['udp', 'tcp']) {
      const args = [...inBridge, '-d', `${ns}/32`, '-p', proto, '--dport', '53', '-j', 'ACCEPT'];
      rules.push({ table: 'filter', chain: 'INPUT', args, label: `allow:dns:${ns}` });
      rules.push({ table: 'filter', chain: 'FORWARD', args, label: `allow:dns:${ns}` });
    }
  }
  // The host itself, on any of its addresses and ports: its API, Redis, registry, docker0, the bridge's own address.
  rules.push({ table: 'filter', chain: 'INPUT', args: [...inBridge, ...reject], label: 'deny:this-host' });
  if (o.policy.kind === 'none') {
    rules.push({ table: 'filter', chain: 'FORWARD', args: [...inBridge, ...reject], label: 'deny:everything' });
    return rules;
  }
  const forwardDeny = (dest: string, what: string, extra: string[] = []) =>
    rules.push({ table: 'filter', chain: 'FORWARD', args: [...inBridge, '-d', dest, ...extra, ...reject], label: `deny:${what}:${dest}` });
  forwardDeny(BUILD_BRIDGES, 'other-builds');
  const hostAddresses = await (o.hostAddresses ?? defaultHostAddresses)();
  for (const addr of hostAddresses) forwardDeny(`${addr}/32`, 'this-host');
  const resolve = o.resolve ?? defaultResolve;
  for (const ep of o.protect ?? []) {
    const addrs = isIP(ep.host) === 4 ? [ep.host] : await resolve(ep.host).catch(() => [] as string[]);
    for (const addr of addrs) forwardDeny(`${addr}/32`, `slipway-endpoint:${ep.port}`, ['-p', 'tcp', '--dport', String(ep.port)]);
  }
  if (o.policy.kind === 'public') {
    for (const [range, what] of DENIED_RANGES) forwardDeny(range, what);
    rules.push({ table: 'filter', chain: 'FORWARD', args: [...inBridge, '!', '-o', o.bridge, '-j', 'ACCEPT'], label: 'allow:internet' });
  } else {
    for (const entry of o.policy.entries) {
      const dests = isCidr(entry) ? [entry.includes('/') ? entry : `${entry}/32`] : (await resolve(entry).catch(() => [] as string[])).map((a) => `${a}/32`);
      for (const dest of dests) {
        rules.push({ table: 'filter', chain: 'FORWARD', args: [...inBridge, '-d', dest, '-j', 'ACCEPT'], label: `allow:${entry}` });
      }
    }
    rules.push({ table: 'filter', chain: 'FORWARD', args: [...inBridge, ...reject], label: 'deny:not-allowed' });
  }
  rules.push({ table: 'filter', chain: 'FORWARD', args: ['-o', o.bridge, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'], label: 'allow:replies' });
  rules.push({ table: 'nat', chain: 'POSTROUTING', args: ['-s', o.subnet, '!', '-o', o.bridge, '-j', 'MASQUERADE'], label: 'allow:nat' });
  return rules;
}

/**
 * Applies rule changes to both tables in one `iptables-restore --noflush` (one process and one
 * commit per table, instead of one process per rule); `lines` are `-I …` or `-D …` by table.
 */
async function restore(lines: Record<'filter' | 'nat', string[]>): Promise<void> {
  const text = (['filter', 'nat'] as const)
    .filter((t) => lines[t].length > 0)
    .map((t) => `*${t}\n${lines[t].join('\n')}\nCOMMIT\n`)
    .join('');
  if (!text) return;
  const res = await exec('iptables-restore', ['--noflush', '--wait', '10'], { input: text });
  if (res.code !== 0) throw new Error(`iptables-restore: ${res.stderr.trim() || `exit ${res.code}`}`);
}

function commentOf(slot: string, index: number, label: string): string {
  return `${COMMENT_PREFIX}${slot}:${index}:${label}`.replace(/\s+/g, '_').slice(0, 255);
}

/**
 * Adds a build's rules (inserted at the top of each chain, in order, so they are evaluated before any
 * other rule of the host) and enables IPv4 forwarding when the policy lets anything out. On any
 * failure, whatever was added is removed again.
 */
export async function openEgress(o: EgressOptions): Promise<Egress> {
  const rules = await planRules(o);
  if (o.policy.kind !== 'none') {
    const forward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '1')).trim();
    if (forward !== '1') await exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  }
  const position = new Map<string, number>();
  const lines: Record<'filter' | 'nat', string[]> = { filter: [], nat: [] };
  for (const [i, rule] of rules.entries()) {
    const at = (position.get(`${rule.table}/${rule.chain}`) ?? 0) + 1;
    position.set(`${rule.table}/${rule.chain}`, at);
    lines[rule.table].push(['-I', rule.chain, String(at), ...rule.args, '-m', 'comment', '--comment', commentOf(o.slot, i, rule.label)].join(' '));
  }
  // One commit per table: a failure leaves that table as it was; the other is undone here.
  try {
    await restore(lines);
  } catch (err) {
    await removeEgressRules((slot) => slot === o.slot);
    throw err;
  }
  return { policy: o.policy, refusals: () => refusalsOf(o.slot) };
}

interface SavedRule {
  table: 'filter' | 'nat';
  packets: number;
  /** The rule as `iptables-save` prints it, from `-A` on. */
  args: string[];
  slot: string;
  label: string;
}

/** Every rule slipway added to these tables (default both), with its counters. */
export async function savedRules(tables: readonly ('filter' | 'nat')[] = ['filter', 'nat']): Promise<SavedRule[]> {
  const out: SavedRule[] = [];
  for (const table of tables) {
    // A machine without iptables has no rules of ours either.
    const res = await exec('iptables-save', ['-c', '-t', table]).catch(() => ({ stdout: '' }));
    for (const line of res.stdout.split('\n')) {
      const m = /^\[(\d+):\d+\] (-A .*)$/.exec(line);
      if (!m) continue;
      const args = words(m[2]!);
      const at = args.indexOf('--comment');
      const comment = at >= 0 ? (args[at + 1] ?? '') : '';
      if (!comment.startsWith(COMMENT_PREFIX)) continue;
      const [, slot = '', , ...label] = comment.split(':');
      out.push({ table, packets: Number(m[1]), args, slot, label: label.join(':') });
    }
  }
  return out;
}

/** An iptables-save line's words; a quoted word (comments are quoted) loses its quotes. */
function words(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!));
}

/** Removes the rules of every slot `which` names; answers how many went. */
export async function removeEgressRules(which: (slot: string) => boolean): Promise<number> {
  const lines: Record<'filter' | 'nat', string[]> = { filter: [], nat: [] };
  for (const rule of await savedRules()) {
    if (!which(rule.slot)) continue;
    lines[rule.table].push(['-D', ...rule.args.slice(1).map(quoted)].join(' '));
  }
  await restore(lines);
  return lines.filter.length + lines.nat.length;
}

/** A word as iptables-restore reads it back. */
function quoted(word: string): string {
  return /^[^\s"\\]+$/.test(word) ? word : `"${word.replace(/(["\\])/g, '\\$1')}"`;
}

/** The refusing rules of a slot that counted packets. */
async function refusalsOf(slot: string): Promise<Refusal[]> {
  const byWhat = new Map<string, number>();
  for (const rule of await savedRules(['filter'])) {
    if (rule.slot !== slot || !rule.label.startsWith('deny:') || rule.packets === 0) continue;
    const what = describeDenial(rule.label.slice('deny:'.length));
    byWhat.set(what, (byWhat.get(what) ?? 0) + rule.packets);
  }
  return [...byWhat].map(([what, packets]) => ({ what, packets }));
}

function describeDenial(label: string): string {
  const [kind = '', ...rest] = label.split(':');
  const dest = rest.join(':').replace(/\/32$/, '');
  switch (kind) {
    case 'this-host':
      return dest ? `this host (${dest})` : 'this host (any of its addresses)';
    case 'other-builds':
      return `other builds' networks (${dest})`;
    case 'slipway-endpoint':
      return `slipway's own endpoint (${rest.slice(1).join(':').replace(/\/32$/, '')}:${rest[0]})`;
    case 'everything':
      return 'any address (no network)';
    case 'not-allowed':
      return 'an address outside the allow-list';
    default:
      return `${kind} range ${dest}`;
  }
}

/** The build log's sentence about what the policy refused. */
export function refusalSentence(policy: EgressPolicy, refusals: readonly Refusal[]): string | null {
  if (refusals.length === 0) return null;
  const parts = refusals.map((r) => `${r.what} (${r.packets} packet${r.packets === 1 ? '' : 's'})`);
  return `egress policy ${describePolicy(policy)} refused connections to ${parts.join(', ')}`;
}
