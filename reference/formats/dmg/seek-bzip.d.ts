/** The part of seek-bzip 2.0.0 (no bundled types) the dmg reader uses. */
declare module 'seek-bzip' {
  interface ByteSink { writeByte(b: number): void }
  const Bunzip: { decode(input: Buffer, output?: Buffer | number | ByteSink, multistream?: boolean): Buffer | undefined };
  export default Bunzip;
}
