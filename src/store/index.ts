export * from './records.js';
export { keys } from './keys.js';
export { RepoStore, ClaimsTaken, type Claim, type StoredRepo, type VersionGuard } from './repos.js';
export { TokenStore, TokenNameTaken, Role, roleAtLeast, type TokenInfo, type TokenGrant } from './tokens.js';
export { AuditStore } from './audit.js';
export { EventBus, eventChannel, type SlipwayEvent, type EventListener, type SubscribeOptions } from './events.js';
export { DeliveryStore, type DeliveryDecision, type Receipt } from './deliveries.js';
export { BuildStore, buildKeys, CHANGING_BUILD_FIELDS, encodeBuild, decodeBuild, decodeStoredBuild, unpackBuildEvent, type PackedBuildEvent, type BuildListQuery } from './builds.js';
export { RepoSettingsStore, RepoSettings } from './settings.js';
