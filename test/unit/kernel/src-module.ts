/**
 * A module of src by absolute path, for jest.unstable_mockModule: under Stryker's jest runner a
 * relative path given to it is not resolved from the test file (the dry run fails with "Could not
 * locate module"). This file imports nothing of src, so a test may import it before its mocks.
 */
export const srcModule = (name: string): string =>
  new URL(`../../../src/${name}.ts`, import.meta.url).pathname;
