export * from './records.js';
export { keys } from './keys.js';
export { RepoStore, configVersion, type StoredRepo } from './repos.js';
export { TokenStore, TokenNameTaken, Role, roleAtLeast, hashToken, type TokenInfo } from './tokens.js';
export { AuditStore } from './audit.js';
export { EventBus, type SlipwayEvent, type EventListener } from './events.js';
export { DeliveryStore, type DeliveryDecision } from './deliveries.js';
export { BuildStore, buildKeys, encodeBuild, decodeBuild, decodeStoredBuild, type BuildListQuery } from './builds.js';
