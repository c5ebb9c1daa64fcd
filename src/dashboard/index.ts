/** The dashboard's public surface (the coordinator imports from here). */
export { isLoopback, parseDashboardAddress } from "./auth.js";
export {
  type BankTensor,
  defaultScatterScales,
  embeddingView,
  principalAxes,
  snapshotFromBank,
} from "./embeddings.js";
export { startDashboard } from "./server.js";
export { DashboardStateBuilder, reduceEvents } from "./state.js";
export type * from "./types.js";
