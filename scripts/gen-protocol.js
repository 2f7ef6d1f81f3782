#!/usr/bin/env node
// Writes native/helper/protocol.h from src/plan/protocol.ts (as built in dist/: run `npm run build` first).
// The header is committed; test/plan.test.ts fails when it differs from what this script would write.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const { renderHeader } = require(path.join(root, "dist", "src", "plan", "protocol.js"));
const out = path.join(root, "native", "helper", "protocol.h");
fs.writeFileSync(out, renderHeader());
console.log(`wrote ${path.relative(root, out)}`);
