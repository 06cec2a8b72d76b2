// commander, behind one module like the other libraries (see config-libs.ts).
export { Command, CommanderError, InvalidArgumentError } from "commander";
