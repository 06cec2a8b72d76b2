// commander, bundled into one file by the build (scripts/bundle-vendor.mjs); see config-libs.ts.
export { Command, CommanderError, InvalidArgumentError } from "commander";
