/** The dashboard's public surface (the coordinator imports from here). */
export { isLoopback, parseDashboardAddress } from "./auth.js";
export { embeddingView, principalAxes } from "./embeddings.js";
export { startDashboard } from "./server.js";
export { DashboardStateBuilder, reduceEvents } from "./state.js";
export type * from "./types.js";
