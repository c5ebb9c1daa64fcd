/**
 * One error hierarchy for the whole project. Every error a person can see carries a stable
 * code (`FJ_<AREA>_<WHAT>`) and a message that names the file/field and what was expected.
 * CLIs print `code: message` on one line and exit with `exitCode`; no stack trace.
 */
export class FedjointError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FedjointError";
    this.code = code;
    this.exitCode = options.exitCode ?? 2;
  }

  /** The one line a CLI prints. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Bad user input: a file, a flag or a config field. Exit code 2. */
export class InputError extends FedjointError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { exitCode: 2, ...options });
    this.name = "InputError";
  }
}

/** A data set that fails validation (one instance per problem). */
export class DataError extends InputError {
  readonly file: string;
  constructor(code: string, file: string, message: string, options: { cause?: unknown } = {}) {
    super(code, `${file}: ${message}`, options);
    this.name = "DataError";
    this.file = file;
  }
}

/** A model/checkpoint mismatch (names, shapes, dtypes, checksum). */
export class ModelError extends FedjointError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { exitCode: 3, ...options });
    this.name = "ModelError";
  }
}

/** The runtime cannot do what was asked (backend missing, prerequisite absent). */
export class EnvironmentError extends FedjointError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { exitCode: 4, ...options });
    this.name = "EnvironmentError";
  }
}

/** A protocol violation or a rejected federated message. */
export class ProtocolError extends FedjointError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { exitCode: 5, ...options });
    this.name = "ProtocolError";
  }
}

export function isFedjointError(e: unknown): e is FedjointError {
  return e instanceof FedjointError;
}
