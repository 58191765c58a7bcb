/** Image references (distribution/reference grammar), without tag or digest. */

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);

/** null when valid, else what is wrong. */
export function imageProblem(image: string): string | null {
  if (image.includes('@')) return `${JSON.stringify(image)} carries a digest; give the image repository only (e.g. localhost:5000/acme/web)`;
  const lastSlash = image.lastIndexOf('/');
  if (image.slice(lastSlash + 1).includes(':')) {
    return `${JSON.stringify(image)} carries a tag; give the image repository only (tags come from the rules)`;
  }
  if (image.length > 255) return 'an image name has at most 255 characters';
  if (!NAME.test(image)) {
    return `${JSON.stringify(image)} is not a valid image reference (lower-case path components like registry:5000/owner/name)`;
  }
  return null;
}
