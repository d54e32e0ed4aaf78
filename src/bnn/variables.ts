import * as tf from '@tensorflow/tfjs-core';

/**
 * A variable that owns its buffer alone (the initial tensor is disposed), so the native
 * optimizer may update it in place.
 */
export function ownedVariable(values: Float32Array, shape: number[], name: string): tf.Variable {
  // tfjs variable names are process-global; the suffix keeps two models apart.
  return tf.tidy(() => tf.variable(tf.tensor(values, shape), true, `${name}#${nextVariableId++}`));
}
let nextVariableId = 0;

/** The stable parameter name of a variable made by ownedVariable (as stored in checkpoints). */
export function paramName(v: tf.Variable): string {
  return v.name.replace(/#\d+$/, '');
}
