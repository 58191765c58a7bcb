/** Builders: one build from source fetch to pushed digest, its log stream, and the reaper. */
export { DockerBuildRunner, type DockerBuildRunnerOptions, type RepoBuildSettings } from './docker-runner.js';
export { BuildError, type BuildErrorCode } from './errors.js';
export { openBuildLog, readLog, formatEntry, logKey, type BuildLogWriter, type BuildLogOptions, type LogEntry } from './log.js';
export { LogFollowers, LogFollowersClosedError, type LogFollowersOptions, type FollowOptions } from './log-followers.js';
export { reap, type ReaperOptions, type ReapReport } from './reaper.js';
export { type RegistryCredentials } from './registry.js';
export { createBuilders, type Builders, type BuildersOptions } from './service.js';
export { parseEgressPolicy, EgressPolicyError, type EgressPolicy, type Endpoint } from './egress.js';
