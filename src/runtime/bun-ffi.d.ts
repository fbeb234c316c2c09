/**
 * The part of Bun's `bun:ffi` that src/runtime/exec.ts uses (the wrapper is compiled with Bun;
 * tsc checks it with this declaration instead of pulling Bun's global types into the project).
 */
declare module 'bun:ffi' {
  export type Pointer = number;
  type FFITypeName = 'ptr' | 'i32';
  type Argument = Pointer | NodeJS.TypedArray | null;
  interface FFIFunction {
    readonly args: readonly FFITypeName[];
    readonly returns: FFITypeName;
  }
  export interface Library<Fns extends Record<string, FFIFunction>> {
    symbols: { [K in keyof Fns]: (...args: Argument[]) => Pointer | null };
    close(): void;
  }
  export function dlopen<Fns extends Record<string, FFIFunction>>(
    path: string,
    symbols: Fns,
  ): Library<Fns>;
  /** The address of a typed array's data, valid while the array is alive. */
  export function ptr(view: NodeJS.TypedArray): Pointer;
}
