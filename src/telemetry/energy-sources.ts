// Telemetry's vocabulary held against the store's, at compile time: the store takes its own
// types (src/store/ imports nothing of telemetry), so a drift is caught here, naming the type.
// Only the recorder (which writes to the store) imports this module; the meter takes its list
// from ./types.ts, so a worker, which only samples, never reaches the store.
import type { HardwareColumns } from '../store/hardware.js';
import { ENERGY_SOURCES as STORED_ENERGY_SOURCES, type EnergySource as StoredEnergySource } from '../store/schema.js';
import type { EnergySource, HardwareInfo } from './types.js';

/**
 * Every source, best first (the order of `+`-joined labels such as `nvml+rapl`). One list:
 * it is the array the store builds its CHECK constraint on `energy_samples.source` from, so
 * a source telemetry measures is always one the store accepts.
 */
export const ENERGY_SOURCES: readonly [EnergySource, ...EnergySource[]] = STORED_ENERGY_SOURCES;

type Check<T extends true> = T;
/** True when A and B are the same type (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** True when a T is a Row with no field the Row lacks (which the store would drop). */
type Fits<T, Row> = [T] extends [Row] ? ([Exclude<keyof T, keyof Row>] extends [never] ? true : false) : false;
// A new energy source needs src/store/schema.ts's list (and a migration for its CHECK) too.
export type EnergySourcesAreStored = Check<Same<EnergySource, StoredEnergySource>>;
export type HardwareInfoIsStored = Check<Fits<HardwareInfo, HardwareColumns>>;
