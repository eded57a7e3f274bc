// `node --import ./scripts/test-runner/register.mjs`: installs hooks.mjs (Node ≥ 20.6 module.register).
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
