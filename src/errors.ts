/**
 * One error hierarchy and one registry of error codes for the whole project, in the manner of
 * fastify's `lib/errors.js`: every `FJ_<AREA>_<WHAT>` code is declared once below, grouped by area,
 * with its kind (which decides the class and the exit code), a short message saying what went wrong
 * and a remedy saying what to do about it.
 *
 * Throw sites create errors through the registry — `throw fjError("FJ_STUDY_CONFIG", detail)` — so an
 * undeclared code does not compile. The detail names the file/field and what was expected; a CLI
 * prints `CODE: detail` on one line (`toLine()`) and exits with the kind's exit code, no stack trace.
 * On a terminal the CLI adds the remedy on a second line (see `src/cli/run.ts`); scripts reading
 * stderr only ever see the one line.
 */

/** What kind of problem: decides the class (`instanceof`) and the exit code. */
export type ErrorKind = "input" | "data" | "model" | "environment" | "protocol";

export interface ErrorSpec {
  readonly kind: ErrorKind;
  /** What went wrong, in a few words (the detail of each throw says where and what was expected). */
  readonly message: string;
  /** What the person who sees the error can do about it. */
  readonly remedy: string;
}

/** Exit codes of the kinds: input and data 2, model 3, environment 4, protocol 5. */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  input: 2,
  data: 2,
  model: 3,
  environment: 4,
  protocol: 5,
};

const input = (message: string, remedy: string): ErrorSpec => ({ kind: "input", message, remedy });
const data = (message: string, remedy: string): ErrorSpec => ({ kind: "data", message, remedy });
const model = (message: string, remedy: string): ErrorSpec => ({ kind: "model", message, remedy });
const environment = (message: string, remedy: string): ErrorSpec => ({
  kind: "environment",
  message,
  remedy,
});
const protocol = (message: string, remedy: string): ErrorSpec => ({ kind: "protocol", message, remedy });

const CHECK_DATA = "run `fedjoint data check <dir>` to list every problem, fix the files and retry";
const SITE_BUG =
  "a site that follows the protocol never sends this: update the site-client to the coordinator's version";

export const ERRORS = {
  // ---- command line ---------------------------------------------------------------------------
  FJ_CLI_ARG: input("invalid command-line argument", "run the command with --help for the accepted values"),

  // ---- study config ---------------------------------------------------------------------------
  FJ_STUDY_CONFIG: input(
    "invalid study config",
    "fix the named field of the study config (JSON or YAML); the operator guide lists every field",
  ),

  // ---- site datasets (nnU-Net v2 layout) ------------------------------------------------------
  FJ_DATA_MISSING: data("a file or folder of the dataset is missing or unreadable", CHECK_DATA),
  FJ_DATA_JSON: data(
    "dataset.json is not valid",
    "dataset.json needs channel_names, labels {name: value} with background 0, numTraining and file_ending",
  ),
  FJ_DATA_NAME: data(
    "a file name does not follow the nnU-Net v2 layout",
    "name images imagesTr/<case>_0000<file_ending> and labels labelsTr/<case><file_ending>",
  ),
  FJ_DATA_NUMTRAINING: data("numTraining disagrees with the files", "set numTraining to the number of cases"),
  FJ_DATA_TOO_FEW_CASES: data(
    "too few complete cases",
    "a site needs at least 3 complete cases (image and label) for train, validation and test",
  ),
  FJ_DATA_JOINT: data(
    "the dataset's joint differs from the site's",
    "start the site with the joint its dataset.json declares, or fix dataset.json",
  ),
  FJ_DATA_SHAPE_MISMATCH: data(
    "image and label are not on the same grid",
    "resample the label map onto its image's grid (same dims)",
  ),
  FJ_DATA_SPACING_MISMATCH: data(
    "image and label spacings differ",
    "write the label map with its image's voxel spacing",
  ),
  FJ_DATA_ORIGIN_MISMATCH: data(
    "image and label origins differ",
    "check that the label map belongs to this image (a warning, training goes on)",
  ),
  FJ_DATA_PATH: data(
    "a dataset file lies outside the dataset folder",
    "copy the file into the dataset folder instead of linking to a place outside it",
  ),
  FJ_DATA_LABEL_EMPTY: data(
    "a label map holds no foreground",
    "check that the label map belongs to this image (a warning: the case trains as background only)",
  ),
  FJ_DATA_LABEL_NONINTEGER: data(
    "a label map holds non-integer values",
    "label maps must hold the integer values of dataset.json labels (not probabilities)",
  ),
  FJ_DATA_LABEL_UNKNOWN: data(
    "a label map holds a value dataset.json does not declare",
    "declare the label in dataset.json or remove it from the label map",
  ),
  FJ_DATA_NONFINITE: data("an image holds NaN or infinite values", "fix or re-export the image"),
  FJ_DATA_CHANGED: data(
    "a file changed while it was read",
    "do not modify the dataset while a site trains on it",
  ),
  FJ_DATA_CASE_UNKNOWN: input("unknown case id", "use a case id listed in the dataset's imagesTr"),
  FJ_DATA_OUT_EXISTS: input(
    "the output folder exists",
    "give a new or empty folder (or a previous phantom dataset, which is replaced)",
  ),
  FJ_DATA_SLICE_SIZE: input("invalid slice size", "use an integer size 2–4096 (the paper trains at 256)"),
  FJ_DATA_SLICE_AXIS: input("invalid slicing axis", "slice along axis 0, 1 or 2"),
  FJ_DATA_BATCH: input(
    "invalid batch sampler settings",
    "use a batch ≥ 1, a fraction in 0–1 and existing slices",
  ),

  // ---- NIfTI files ----------------------------------------------------------------------------
  FJ_DATA_NIFTI_PATH: data("not a NIfTI file name", "name the file <name>.nii or <name>.nii.gz"),
  FJ_DATA_NIFTI_GZIP: data("corrupt gzip stream", "re-export or re-download the file"),
  FJ_DATA_NIFTI_MAGIC: data(
    "not a NIfTI-1 single file",
    "convert the file to NIfTI-1 .nii/.nii.gz (e.g. with nibabel or dcm2niix)",
  ),
  FJ_DATA_NIFTI_TRUNCATED: data("the file is truncated", "re-export or re-download the file"),
  FJ_DATA_NIFTI_DIMS: data(
    "unsupported or invalid dimensions",
    "give one 3D volume per file (a 4D series must be split)",
  ),
  FJ_DATA_NIFTI_DATATYPE: data(
    "unsupported NIfTI datatype",
    "store the volume as uint8, int8, int16, uint16, int32, uint32, float32 or float64",
  ),
  FJ_DATA_NIFTI_SPACING: data("invalid voxel spacing", "pixdim[1..3] must be positive voxel sizes in mm"),
  FJ_DATA_NIFTI_AFFINE: data(
    "affine and spacing disagree",
    "give an affine whose column lengths equal the voxel spacing",
  ),
  FJ_DATA_NIFTI_RANGE: data(
    "a value does not fit the datatype",
    "write the volume with a wider datatype (e.g. float32)",
  ),

  // ---- volumes (src/volume) -------------------------------------------------------------------
  FJ_VOLUME_GRID: input(
    "a voxel array does not match its grid",
    "pass arrays of dims[0]·dims[1]·dims[2] voxels with positive integer dims and positive spacing",
  ),
  FJ_VOLUME_LABEL: input(
    "a label value does not fit a uint8 label map",
    "label maps hold labels 1–255; background is 0",
  ),
  FJ_VOLUME_KERNEL: input(
    "unsupported structuring element",
    "use the EDT method for closing radii other than 2",
  ),

  // ---- evaluation -----------------------------------------------------------------------------
  FJ_EVAL_GRID_MISMATCH: input(
    "prediction and ground truth are not on the same grid",
    "resample the prediction onto the ground truth's grid (same dims, spacing and affine)",
  ),
  FJ_EVAL_LABEL_VALUES: input(
    "the file is not a label map",
    "pass a label map (non-negative integers, e.g. the argmax of the network), not an image or probabilities",
  ),
  FJ_EVAL_LABEL_UNKNOWN: input(
    "the prediction holds labels the ground truth does not",
    "pass --labels to say which labels to score, or --dataset with the dataset.json that declares them",
  ),
  FJ_EVAL_NO_LABELS: input("nothing to evaluate", "pass --labels to evaluate labels absent from both files"),
  FJ_EVAL_EMPTY_MASKS: input(
    "surface distances of an empty mask",
    "binaryMetrics defines the empty cases; call surfaceDistances with two non-empty masks",
  ),
  FJ_EVAL_STACK: input(
    "slices do not fit the volume",
    "pass one slice per voxel along the slicing axis, each of the training size",
  ),
  FJ_EVAL_STATS: input(
    "a statistic was asked of an empty or invalid sample",
    "pass non-empty samples without NaN, and parameters in their documented range",
  ),
  FJ_EVAL_FOLDS: input(
    "invalid leave-one-out plan",
    "give each site once, with at least 3 exams, and at most min(n_k) folds",
  ),
  FJ_EVAL_REPORT: input(
    "the results cannot be reported",
    "give unique method names, a reference method among them and results in the fedjoint.study-results/1 schema",
  ),
  FJ_EVAL_METRICS_MISSING: data(
    "metrics.json not found",
    "pass study report folders (they hold metrics.json)",
  ),
  FJ_EVAL_METRICS_INVALID: data(
    "metrics.json is not a fedjoint metrics file",
    "regenerate it with `fedjoint report` or the study that wrote it",
  ),
  FJ_EVAL_METRICS_DUPLICATE: data(
    "a method appears twice among the runs to merge",
    "merge each run once, or rename the studies",
  ),
  FJ_BENCH_METRICS_INVALID: data(
    "metrics.json is not a fedjoint bench quality file",
    "pass the --out folders of `fedjoint bench quality` runs (they hold metrics.json)",
  ),
  FJ_BENCH_MERGE: input(
    "these quality benchmarks cannot be merged",
    "merge runs of one preset and budget, each run × seed from one folder only",
  ),

  // ---- embeddings -----------------------------------------------------------------------------
  FJ_EMBEDDINGS_SHAPE: input(
    "embeddings of one scale have different dimensions",
    "every vector of one scale must have that scale's dimension",
  ),
  FJ_EMBEDDINGS_VALUE: input("an embedding holds NaN or infinite values", "upload finite embeddings"),

  // ---- model and checkpoints ------------------------------------------------------------------
  FJ_MODEL_CONFIG: model("invalid trainer configuration", "fix the named trainer setting"),
  FJ_MODEL_ARCHITECTURE: model(
    "the network's variables differ from its architecture",
    "a layer and src/model/architecture.ts disagree: make them name and shape the same variables",
  ),
  FJ_MODEL_LABELS: model(
    "invalid label set",
    "dataset.json labels must be the integers 0..n−1 without gaps, 0 being the background",
  ),
  FJ_MODEL_JOINT: model("the trainer does not serve this joint", "use a joint the trainer was built for"),
  FJ_MODEL_PHASE: model("the method has no such phase", "only +mjap methods have the auto-encoder phase"),
  FJ_MODEL_SAMPLER: model(
    "no batch sampler",
    "give the trainer a makeSampler (src/data/slices.ts makeBatchSampler)",
  ),
  FJ_MODEL_BATCH: model(
    "a batch has the wrong size",
    "the sampler must return batches of the configured size",
  ),
  FJ_MODEL_BANK: model(
    "embedding bank does not fit the network",
    "use embeddings of a network with the same base and depth",
  ),
  FJ_MODEL_NO_VALIDATION: model("no validation slices", "give each joint at least one validation exam"),
  FJ_MODEL_DIVERGED: model(
    "training diverged (loss not finite)",
    "lower the learning rate, or check the data",
  ),
  FJ_MODEL_DISPOSED: model("the trainer was disposed", "create a new trainer"),
  FJ_MODEL_SHAPE: model("a tensor has the wrong shape", "use tensors of this model's architecture"),
  FJ_MODEL_UNKNOWN_VARIABLE: model(
    "no such model variable",
    "use variable names of this model (fedjoint model summary)",
  ),
  FJ_MODEL_MISSING_VARIABLE: model("a model variable is missing", "give every variable of the set"),
  FJ_MODEL_SCOPE: model("invalid checkpoint scope", "use all, shared or domain:<joint>"),
  FJ_MODEL_CHECKPOINT: model("invalid checkpoint", "use a checkpoint written by fedjoint for this model"),
  FJ_MODEL_CHECKPOINT_MISMATCH: model(
    "the checkpoint belongs to another model",
    "load a checkpoint of the same architecture, base, depth and joints",
  ),
  FJ_MODEL_CHECKSUM: model(
    "checkpoint checksum mismatch",
    "the checkpoint is corrupt: restore it or retrain",
  ),

  // ---- model directories (a site's model/, fedjoint train --out) and fedjoint segment ---------
  FJ_MODEL_DIR_MANIFEST: input(
    "not a fedjoint model directory, or its manifest is damaged",
    "pass the model/ directory a site-client or `fedjoint train --out` wrote; copy it again if it was edited",
  ),
  FJ_MODEL_DIR_CHECKSUM: input(
    "the model's weights do not match their manifest",
    "the model directory is damaged: copy it again from where it was written",
  ),
  FJ_SEGMENT_JOINT: input(
    "the model does not segment this joint",
    "pass --joint with one of the joints the model serves (its manifest lists them)",
  ),
  FJ_SEGMENT_GEOMETRY: input(
    "the exam's size or spacing is outside what the model was trained on",
    "resample or crop the exam to the model's field of view and slice orientation (third voxel axis = acquisition axis), or pass --ignore-geometry to segment it anyway",
  ),
  FJ_SEGMENT_OUTPUT_EXISTS: input(
    "the output file exists",
    "choose another --out, remove the file, or pass --overwrite",
  ),
  FJ_SEGMENT_INPUT: input(
    "no exam to segment, or an exam file is not named as expected",
    "pass --image exam.nii.gz, or --images DIR holding <case>_0000.nii.gz files (nnU-Net naming) and --out DIR",
  ),

  // ---- engine ---------------------------------------------------------------------------------
  FJ_ENGINE_BACKEND: input("unknown backend", "use --backend auto, tensorflow, native, wasm, webgpu or cpu"),
  FJ_ENGINE_INIT: environment(
    "the backend could not be initialised",
    "try another --backend (wasm works everywhere)",
  ),
  FJ_ENGINE_TENSORFLOW: environment(
    "the tensorflow backend is not installed",
    "npm install @tensorflow/tfjs-node-gpu@4.22.0 (or tfjs-node), or use --backend wasm",
  ),
  FJ_ENGINE_WASM: environment("the wasm backend failed to start", "reinstall the package (npm ci)"),
  FJ_ENGINE_NATIVE: environment(
    "the native kernels are not available",
    "run `npm run setup` (installs g++ and libopenblas-dev, then builds native/), or unset FEDJOINT_NATIVE=0; --backend wasm works without them",
  ),
  FJ_ENGINE_WEBGPU_ADAPTER: input(
    "unknown WebGPU adapter choice",
    "set FEDJOINT_WEBGPU_ADAPTER to default (Dawn's native backend: Vulkan) or compatibility (OpenGL ES)",
  ),
  FJ_ENGINE_WEBGPU: environment(
    "WebGPU is not available",
    "npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu, and run where Vulkan or EGL is available",
  ),

  // ---- aggregation and update validation ------------------------------------------------------
  FJ_AGG_EMPTY: protocol("no update to aggregate", "wait for at least minSites updates before aggregating"),
  FJ_AGG_SCHEMA: protocol("the update does not match the round's tensor schema", SITE_BUG),
  FJ_AGG_SNAPSHOT: protocol(
    "aggregator snapshot does not match the schema",
    "restart the coordinator from a consistent state directory",
  ),
  FJ_AGG_WEIGHT: protocol("invalid aggregation weight", "sample counts and weights must be finite and > 0"),
  FJ_AGG_SAMPLES: protocol(
    "invalid sample count",
    "a site declares the slices it trained on: at least 1, at most the round's steps × its per-joint batch",
  ),
  FJ_AGG_DTYPE: protocol("invalid tensor dtype", SITE_BUG),
  FJ_AGG_DOMAIN_TENSOR: protocol(
    "a domain-specific tensor was sent",
    "domain parameters never leave a site: update the site-client",
  ),
  FJ_AGG_UNKNOWN_TENSOR: protocol("unexpected tensor in an update", SITE_BUG),
  FJ_AGG_DUPLICATE_TENSOR: protocol("a tensor was sent twice", SITE_BUG),
  FJ_AGG_SHAPE: protocol("a tensor has the wrong shape", SITE_BUG),
  FJ_AGG_MISSING_TENSOR: protocol("a tensor is missing from the update", SITE_BUG),
  FJ_AGG_NONFINITE: protocol(
    "an update holds NaN or infinite values",
    "the site's training diverged: check its logs",
  ),
  FJ_AGG_NORM: protocol(
    "the update's norm exceeds the bound",
    "the site's training diverged, or raise maxUpdateNorm in the study config",
  ),
  FJ_AGG_NORM_OUTLIER: protocol(
    "the update lies far from the round's other updates",
    "the update was left out of the aggregate: check the site's data and training, or raise relativeNormBound",
  ),
  FJ_AGG_SCALARS: protocol(
    "invalid loss or metric values",
    "an update carries only the method's loss terms and the site-client's metrics, with finite values",
  ),

  // ---- wire protocol --------------------------------------------------------------------------
  FJ_PROTOCOL_PROTO_MISSING: environment("proto/federation.proto not found", "reinstall the package"),
  FJ_PROTOCOL_HEADER: protocol("invalid stream header", SITE_BUG),
  FJ_PROTOCOL_CHUNK: protocol("invalid stream chunk", SITE_BUG),
  FJ_PROTOCOL_TOO_LARGE: protocol(
    "the tensor set exceeds the byte cap",
    "check that both sides run the same study config",
  ),
  FJ_PROTOCOL_INCOMPLETE: protocol(
    "the stream ended early",
    "retry; check the network between site and coordinator",
  ),
  FJ_PROTOCOL_CHECKSUM: protocol("SHA-256 mismatch", "retry; the bytes were corrupted in transit"),
  FJ_PROTOCOL_IDLE: protocol(
    "the stream sent nothing for longer than the idle limit",
    "check the network between site and coordinator; the site-client retries by itself",
  ),
  FJ_PROTOCOL_DEADLINE: protocol(
    "the stream did not finish within its deadline",
    "check the network's bandwidth; the coordinator's --stream-total-s sets the deadline",
  ),
  FJ_PROTOCOL_BACKLOG: protocol(
    "the reader does not keep up with the stream",
    "read the stream as it arrives (a Watch client must consume its events)",
  ),
  FJ_PROTOCOL_SHAPE: protocol("tensor shape and data disagree", SITE_BUG),
  FJ_PROTOCOL_DTYPE: protocol("unsupported wire dtype", "use float32 or float16"),
  FJ_PROTOCOL_FILE: protocol(
    "invalid tensor file",
    "the file is corrupt: restore it from the coordinator's state",
  ),
  FJ_PROTOCOL_REF: protocol("invalid round reference", SITE_BUG),
  FJ_PROTOCOL_STALE: protocol(
    "the round is closed",
    "the site was too slow; it continues with the next round",
  ),
  FJ_PROTOCOL_EARLY: protocol("the round is not open yet", "wait for the coordinator's next task"),
  FJ_PROTOCOL_REPLAY: protocol(
    "this update was already accepted",
    "nothing to do: a retry never counts twice",
  ),
  FJ_PROTOCOL_EVALUATION: protocol("invalid evaluation report", SITE_BUG),
  FJ_PROTOCOL_TASK: protocol(
    "invalid task from the coordinator",
    "update the site-client to the coordinator's version",
  ),

  // ---- coordinator ----------------------------------------------------------------------------
  FJ_COORD_BIND: environment(
    "the coordinator cannot listen",
    "choose a free port or an address of this machine",
  ),
  FJ_COORD_STATE: input(
    "invalid coordinator state",
    "finish the study with the version that wrote the --state directory, or start in a new one",
  ),
  FJ_COORD_CONFIG_CHANGED: input(
    "the state directory belongs to another study config",
    "use the same config, or a new --state directory",
  ),
  FJ_COORD_NOT_JOINED: protocol("the site has not joined", "call Join first (the site-client does)"),
  FJ_COORD_UNKNOWN_SITE: protocol("unknown site", "add the site to the study config's sites"),
  FJ_COORD_NO_MODEL: protocol(
    "no model for this round",
    "pull the model of the round the coordinator announced",
  ),
  FJ_COORD_JOINT: protocol(
    "the site's joint differs from the study config",
    "start the site with the joint the study config gives it",
  ),
  FJ_COORD_LABELS: protocol(
    "the site's label set differs from the joint's",
    "the 'shared' method's union head needs every site to declare its joint's canonical label set (src/joints.ts) in dataset.json",
  ),
  FJ_COORD_INVARIANT: environment(
    "the coordinator reached a state it should never reach",
    "report it with the coordinator's log and state.json; restart the coordinator to resume from its state directory",
  ),
  FJ_COORD_EXAMS: protocol(
    "the site has too few exams",
    "a site needs at least 3 exams and at least `folds` exams",
  ),
  FJ_COORD_FOLD: protocol("no such fold", SITE_BUG),
  FJ_COORD_EMBEDDINGS: protocol("invalid embeddings", SITE_BUG),
  FJ_COORD_EMBEDDINGS_OFF: protocol("this study exchanges no embeddings", SITE_BUG),
  FJ_COORD_BUSY: protocol(
    "the site already has an upload of this kind in flight",
    "wait for it to finish; the site-client retries by itself",
  ),
  FJ_COORD_SHUTDOWN: protocol(
    "the coordinator is shutting down",
    "the site-client reconnects by itself once the coordinator is back",
  ),
  FJ_COORD_INTERNAL: environment(
    "unexpected error in the coordinator",
    "report it with the coordinator's log; the coordinator resumes from its state directory when restarted",
  ),

  // ---- identity and transport security --------------------------------------------------------
  FJ_AUTH_UNKNOWN_SITE: protocol(
    "the certificate's CN is not a site of the study",
    "issue the site a certificate whose CN is listed in the study config's sites",
  ),
  FJ_AUTH_IMPERSONATION: protocol(
    "a site tried to act as another",
    "a site can only act as its certificate's CN",
  ),
  FJ_AUTH_NO_CERTIFICATE: protocol(
    "the caller presented no verified client certificate",
    "connect with a certificate signed by the study's CA (fedjoint certs)",
  ),
  FJ_AUTH_OPERATOR: protocol(
    "only the coordinator's operator may watch the study",
    "watch with the operator certificate (its CN is the coordinator's --operator, default 'operator')",
  ),
  FJ_TLS_INSECURE_REMOTE: input(
    "--insecure on an address other machines can reach",
    "use mutual TLS (--cert, --key, --ca) or keep --insecure on 127.0.0.1 / ::1 / localhost",
  ),
  FJ_TLS_MISSING: input(
    "TLS files missing",
    "pass --cert, --key and --ca (or --insecure for a local demo only)",
  ),
  FJ_TLS_READ: input("cannot read a TLS file", "check the path and the file's permissions"),
  FJ_TLS_PEM: input("not a PEM certificate or key", "pass PEM files (fedjoint certs writes them)"),
  FJ_CERTS_CA: input(
    "certificate authority missing",
    "pass a folder holding ca.pem and ca.key, or drop --reuse-ca",
  ),
  FJ_CERTS_KEY: input("not a PKCS#8 ECDSA P-256 key", "use keys written by fedjoint certs"),

  // ---- site-client ----------------------------------------------------------------------------
  FJ_SITE_UNREACHABLE: environment(
    "the coordinator is unreachable",
    "check the --coordinator address, the network and that the coordinator runs",
  ),
  FJ_SITE_DENIED: protocol(
    "the coordinator refused this site",
    "check the site's certificate and that its CN is in the study config",
  ),
  FJ_SITE_TLS: protocol(
    "the TLS handshake with the coordinator failed",
    "check that --ca is the study's CA certificate and that the site certificate was signed by that CA",
  ),
  FJ_SITE_RPC: protocol("a call to the coordinator failed", "read the coordinator's log for the reason"),
  FJ_SITE_REJECTED: protocol(
    "the coordinator rejected the site's message",
    "read the reason; the coordinator's log has the details",
  ),

  // ---- events and NATS ------------------------------------------------------------------------
  FJ_EVENTS_CLOSED: input("the event bus is closed", "publish before closing the bus"),
  FJ_EVENTS_MALFORMED: input("malformed study event", "events must follow the fedjoint study-event schema"),
  FJ_EVENTS_RETAIN: input("invalid retention", "retain must be a positive integer"),
  FJ_EVENTS_STUDY_ID: input("invalid study id", 'use letters, digits, "_" or "-" only'),
  FJ_NATS_CONNECT: environment("cannot connect to NATS", "start nats-server with -js, or fix --nats"),
  FJ_NATS_JETSTREAM: environment(
    "NATS has no usable JetStream",
    "start nats-server with -js (or a jetstream {} block)",
  ),
  FJ_NATS_STREAM: environment(
    "the JetStream stream belongs to something else",
    "use another stream name or fix its subjects",
  ),
  FJ_NATS_PUBLISH: environment(
    "JetStream did not acknowledge an event",
    "check NATS (reachable, store not full); the study goes on",
  ),
  FJ_NATS_MAX_AGE: input("invalid stream max age", "maxAgeMs must be ≥ 0"),

  // ---- dashboard ------------------------------------------------------------------------------
  FJ_DASHBOARD_ADDRESS: input(
    "invalid dashboard address",
    "use [HOST]:PORT, e.g. :8080, 127.0.0.1:8080 or [::1]:8080",
  ),
  FJ_DASHBOARD_LISTEN: environment(
    "the dashboard cannot listen",
    "choose a free port or an address of this machine",
  ),
  FJ_DASHBOARD_TOKEN: input("dashboard token too short", "use a token of at least 16 characters"),
  FJ_DASHBOARD_TOKEN_REQUIRED: input(
    "a dashboard reachable from other machines needs a token",
    "set FEDJOINT_DASHBOARD_TOKEN, give TLS with a client CA, or bind to 127.0.0.1",
  ),
  FJ_DASHBOARD_ASSET: environment("a dashboard asset is missing", "reinstall the package (npm ci)"),

  // ---- simulation -----------------------------------------------------------------------------
  FJ_SIM_BIN: environment("a fedjoint bin is missing", "run npm run build"),
  FJ_SIM_EXITED: environment("a simulated process exited early", "read its log (the message names it)"),
  FJ_SIM_OUTPUT: environment("a simulated process printed no summary", "read its log (the message names it)"),
  FJ_SIM_FAILED: environment("the simulation failed", "read the logs of the failed processes"),
} as const satisfies Record<string, ErrorSpec>;

/** Every code of the project; an undeclared code does not compile where this type is required. */
export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

export interface FedjointErrorOptions {
  cause?: unknown;
  /** The file the error concerns; the message then reads `file: detail`. */
  file?: string;
}

/**
 * Base class of every error a person can see. `message` is `file: detail` (or `detail`); the code's
 * registry entry gives `kind`, `title` and `remedy` (codes received from a peer that this version
 * does not know have no entry).
 */
export class FedjointError extends Error {
  readonly code: string;
  readonly exitCode: number;
  /** The message without the file prefix. */
  readonly detail: string;
  readonly file: string | undefined;
  constructor(code: string, detail: string, options: FedjointErrorOptions & { exitCode?: number } = {}) {
    super(
      options.file === undefined ? detail : `${options.file}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "FedjointError";
    this.code = code;
    this.detail = detail;
    this.file = options.file;
    this.exitCode = options.exitCode ?? (isErrorCode(code) ? EXIT_CODES[ERRORS[code].kind] : 2);
  }

  /** The registry entry of the code, if this version declares it. */
  get spec(): ErrorSpec | undefined {
    return isErrorCode(this.code) ? ERRORS[this.code] : undefined;
  }

  /** What to do about it (from the registry). */
  get remedy(): string | undefined {
    return this.spec?.remedy;
  }

  /** The one line a CLI prints: `CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Bad user input: a file, a flag or a config field. Exit code 2. */
export class InputError extends FedjointError {
  constructor(code: string, detail: string, options: FedjointErrorOptions = {}) {
    super(code, detail, { ...options, exitCode: EXIT_CODES.input });
    this.name = "InputError";
  }
}

/** A data set or data file that fails validation (one instance per problem); names the file. Exit code 2. */
export class DataError extends InputError {
  constructor(code: string, file: string | undefined, detail: string, options: { cause?: unknown } = {}) {
    super(code, detail, { ...options, file });
    this.name = "DataError";
  }
}

/** A model/checkpoint mismatch (names, shapes, dtypes, checksum). Exit code 3. */
export class ModelError extends FedjointError {
  constructor(code: string, detail: string, options: FedjointErrorOptions = {}) {
    super(code, detail, { ...options, exitCode: EXIT_CODES.model });
    this.name = "ModelError";
  }
}

/** The runtime cannot do what was asked (backend missing, prerequisite absent). Exit code 4. */
export class EnvironmentError extends FedjointError {
  constructor(code: string, detail: string, options: FedjointErrorOptions = {}) {
    super(code, detail, { ...options, exitCode: EXIT_CODES.environment });
    this.name = "EnvironmentError";
  }
}

/** A protocol violation or a rejected federated message. Exit code 5. */
export class ProtocolError extends FedjointError {
  constructor(code: string, detail: string, options: FedjointErrorOptions = {}) {
    super(code, detail, { ...options, exitCode: EXIT_CODES.protocol });
    this.name = "ProtocolError";
  }
}

/**
 * The error of a registered code: its class and exit code follow the code's kind.
 * `fjError("FJ_DATA_LABEL_UNKNOWN", "has label 7, dataset.json declares 0–4", { file })`.
 */
export function fjError(code: ErrorCode, detail: string, options: FedjointErrorOptions = {}): FedjointError {
  switch (ERRORS[code].kind) {
    case "input":
      return new InputError(code, detail, options);
    case "data":
      return new DataError(code, options.file, detail, { cause: options.cause });
    case "model":
      return new ModelError(code, detail, options);
    case "environment":
      return new EnvironmentError(code, detail, options);
    case "protocol":
      return new ProtocolError(code, detail, options);
  }
}

export function isFedjointError(e: unknown): e is FedjointError {
  return e instanceof FedjointError;
}
