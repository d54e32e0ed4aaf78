export { AllReduce, type AllReduceStep, type AllReduceStats, type StepOptions } from './allreduce.js';
export { defaultAllReduceOptions, parseAllReduceOptions, parseAllReduceGroup, type AllReduceGroup, type AllReduceOptions } from './options.js';
export { COMPRESSIONS, bodyBytes, messageBytes, HEADER_BYTES, type Compression } from './codec.js';
export {
  CollectiveConfigError,
  CollectiveFailedError,
  CollectiveTimeoutError,
  MembershipChangedError,
  TransportClosedError,
  type MissingContributions,
} from './errors.js';
export { LoopbackHub, LoopbackTransport, subjectMatches, type Transport, type TransportMessage, type TransportSubscription } from './transport.js';
export { connectNatsTransport, NatsAuthError, type NatsTransportOptions } from './nats-transport.js';
export { mergeNatsAuth, natsAuthFromFlags, NatsAuthConfigError, natsUrlWithAuth, redactNatsUrl, splitNatsUrl, type NatsAuth } from './nats-url.js';
export { bucketPlanOf, fillGradients, gradientVector, startBucketedStep, type BucketedStep, type BucketPlan } from './gradient-buckets.js';
