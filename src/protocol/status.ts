/**
 * gRPC statuses of the Federation service: every call the coordinator refuses ends with a status
 * whose details start with `FJ_…: ` and whose trailing metadata carries the code under `fj-code`,
 * so a site can tell a definitive answer (authentication, validation: fail fast) from a transient
 * one (busy, idle, shutting down: retry). A status without an `fj-code` comes from the transport
 * (connection refused, dropped, timed out on the client) and is transient.
 */
import * as grpc from "@grpc/grpc-js";
import { type ErrorCode, FedjointError, fjError } from "../errors.js";

export const CODE_TRAILER = "fj-code";

/** Codes a site retries after a backoff: the same call may succeed later. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "FJ_COORD_BUSY",
  "FJ_COORD_SHUTDOWN",
  "FJ_PROTOCOL_IDLE",
  "FJ_PROTOCOL_DEADLINE",
  "FJ_PROTOCOL_INCOMPLETE",
  "FJ_PROTOCOL_CHECKSUM",
]);

const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  FJ_AUTH_NO_CERTIFICATE: grpc.status.UNAUTHENTICATED,
  FJ_AUTH_UNKNOWN_SITE: grpc.status.PERMISSION_DENIED,
  FJ_AUTH_IMPERSONATION: grpc.status.PERMISSION_DENIED,
  FJ_AUTH_OPERATOR: grpc.status.PERMISSION_DENIED,
  FJ_COORD_UNKNOWN_SITE: grpc.status.PERMISSION_DENIED,
  FJ_COORD_NOT_JOINED: grpc.status.FAILED_PRECONDITION,
  FJ_COORD_NO_MODEL: grpc.status.NOT_FOUND,
  FJ_COORD_BUSY: grpc.status.RESOURCE_EXHAUSTED,
  FJ_COORD_SHUTDOWN: grpc.status.UNAVAILABLE,
  FJ_COORD_INTERNAL: grpc.status.INTERNAL,
  FJ_COORD_INVARIANT: grpc.status.INTERNAL,
  FJ_PROTOCOL_IDLE: grpc.status.DEADLINE_EXCEEDED,
  FJ_PROTOCOL_DEADLINE: grpc.status.DEADLINE_EXCEEDED,
  FJ_PROTOCOL_BACKLOG: grpc.status.RESOURCE_EXHAUSTED,
  FJ_PROTOCOL_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
};

/** The gRPC status code a refusal with this FJ_ code is sent with (validation: INVALID_ARGUMENT). */
export function grpcStatusOf(code: string): grpc.status {
  return STATUS_OF[code as ErrorCode] ?? grpc.status.INVALID_ARGUMENT;
}

/** Whether a site should retry a call the coordinator answered with this FJ_ code. */
export function isTransientCode(code: string): boolean {
  return TRANSIENT_CODES.has(code);
}

/**
 * The status object a handler ends with: any error becomes an FJ_ code (an unexpected one is
 * FJ_COORD_INTERNAL, with its message, never a stack).
 */
export function statusOf(err: unknown): grpc.StatusObject {
  const fj =
    err instanceof FedjointError
      ? err
      : fjError("FJ_COORD_INTERNAL", err instanceof Error ? err.message : String(err));
  const metadata = new grpc.Metadata();
  metadata.set(CODE_TRAILER, fj.code);
  return { code: grpcStatusOf(fj.code), details: fj.toLine(), metadata };
}

/** A ServiceError-shaped object for callbacks and `emit("error")` (grpc-js reads code/details/metadata). */
export function serviceError(err: unknown): Partial<grpc.ServiceError> & grpc.StatusObject {
  const s = statusOf(err);
  return Object.assign(new Error(s.details), s);
}

/** The FJ_ code of a status the coordinator sent (trailing metadata, else the details' prefix). */
export function fjCodeOf(err: Pick<grpc.ServiceError, "details" | "metadata">): string | undefined {
  const fromMeta = err.metadata?.get(CODE_TRAILER)?.[0];
  if (typeof fromMeta === "string" && fromMeta.length > 0) return fromMeta;
  return /^(FJ_[A-Z0-9]+(?:_[A-Z0-9]+)*):/.exec(err.details ?? "")?.[1];
}

/** The detail of a coordinator status without its `FJ_…: ` prefix. */
export function detailOf(err: Pick<grpc.ServiceError, "details" | "message">): string {
  const d = err.details || err.message || "";
  return d.replace(/^FJ_[A-Z0-9]+(?:_[A-Z0-9]+)*:\s*/, "");
}
