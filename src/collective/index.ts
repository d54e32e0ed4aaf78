export { AllReduce, type AllReduceStep, type AllReduceStats, type StepOptions } from './allreduce.js';
export { GroupMac, MAC_BYTES, newRunKey, RUN_KEY_BYTES, RunAuth, type Rejections } from './auth.js';
export {
  defaultAllReduceOptions,
  parseAllReduceOptions,
  parseAllReduceGroup,
  type AllReduceGroup,
  type AllReduceOptions,
} from './options.js';
export { COMPRESSIONS, isCompression, type Compression } from './compression.js';
export { bodyBytes, messageBytes, wireLimit, HEADER_BYTES } from './codec.js';
export * from './errors.js';
export {
  LoopbackHub,
  LoopbackTransport,
  subjectMatches,
  type Transport,
  type TransportMessage,
  type TransportSubscription,
} from './transport.js';
export { connectNatsTransport, NatsAuthError, type NatsTransportOptions } from './nats-transport.js';
export { NatsObjectBucket, NatsObjectStoreError, type NatsObjectBucketOptions, type StoredObject } from './nats-object-store.js';
export {
  mergeNatsAuth,
  natsAuthFromFlags,
  NatsAuthConfigError,
  natsServerList,
  NatsUrlError,
  natsUrlWithAuth,
  parseNatsServers,
  redactNatsUrl,
  splitNatsServers,
  splitNatsUrl,
  type NatsAuth,
} from './nats-url.js';
export { codecKernels } from './codec-kernels.js';
export { allreduceBucketed, gradientVector, startBucketedStep, type BucketedStep, type BucketedVector } from './gradient-buckets.js';
export { ElasticGroup, missingRanksOf, type ElasticGroupOptions, type GroupAssignment } from './elastic-group.js';
