import path from 'node:path';

/** Whether `child` lies strictly inside `parent` once both are resolved (no `..` escape, not equal). */
export function isWithin(child: string, parent: string): boolean {
  const relative = path.relative(path.resolve(parent), path.resolve(child));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
