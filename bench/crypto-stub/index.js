'use strict';
// Stand-in for @matrix-org/matrix-sdk-crypto-nodejs (see bench/README.md, "The crypto stub").
// The real package downloads a native binary in an install script, which npm 11 blocks and this
// machine cannot fetch. The peers load it at import time but only use it for end-to-end
// encryption, which no benchmark turns on. Anything taken from this module is a class or
// function that throws when used, so a code path that did need crypto would fail loudly
// rather than measure something else.
function unavailable(name) {
  const fail = function () {
    throw new Error(`@matrix-org/matrix-sdk-crypto-nodejs is stubbed in the benchmark (${name} was used)`);
  };
  return new Proxy(fail, {
    get(target, key) {
      if (key === 'prototype') return target.prototype;
      if (typeof key === 'symbol' || key === 'then' || key === 'toJSON') return undefined;
      // Enum-like members (StoreType.Sqlite, ...) read at load time get a plain value.
      return `${name}.${String(key)}`;
    },
  });
}
const cache = new Map();
module.exports = new Proxy(
  {},
  {
    get(_, key) {
      if (key === '__esModule') return false;
      if (typeof key === 'symbol' || key === 'then' || key === 'default') return undefined;
      if (!cache.has(key)) cache.set(key, unavailable(key));
      return cache.get(key);
    },
  },
);
