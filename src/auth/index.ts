/** Access: tokens × repositories, and the sources builds may fetch. */
export { repoAllowed, repoGlobProblem } from './access.js';
export { parseSourceAllow, sourceProblem, SourcePolicyError, type SourcePolicy } from './sources.js';
