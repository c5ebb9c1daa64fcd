/** Public surface of the wire layer. */
export { fromHalf, toHalf } from "./float16.js";
export * from "./proto.js";
export { type ReceivedSet, readTensorStream, writeMessage, writeTensorStream } from "./stream.js";
export {
  chunksOf,
  decodePayload,
  type EncodedTensorSet,
  encodeTensorSet,
  packTensorSet,
  setDigest,
  TensorSetReceiver,
  tapHeader,
  unpackTensorSet,
  WIRE_DTYPES,
  type WireDtype,
} from "./tensors.js";
