/** Public surface of the site-client. */
export { anonymiseEmbeddings, bankFromTensors } from "./anonymise.js";
export { type RoundReport, SiteClient, type SiteClientOptions, type SiteSummary } from "./client.js";
export {
  foldData,
  loadSiteSlices,
  type SiteData,
  samplerFactory,
  type ValidatedData,
  validateSiteData,
} from "./data.js";
export { Transport, type TransportOptions } from "./transport.js";
