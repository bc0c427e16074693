/**
 * Filenames: opening an image named by json: options, by a dotted option list
 * (--image-opts) and by the null-co protocol, qemu-img info against qbc img
 * info. Whole commands, so the figures are dominated by start-up and the
 * filename's parse; the shared 1 GiB qcow2 is the image named.
 */
import { execa } from 'execa';
import { QBC_IMG, type CaseGroup } from './case.js';

export const filenameCases: CaseGroup = async (ctx) => {
  const json = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: ctx.qcow2, locking: 'off' } })}`;
  const opts = `driver=raw,offset=1048576,size=1048576,file.driver=file,file.filename=${ctx.raw.replaceAll(',', ',,')}`;
  const both = (args: string[]) => ({
    qemu: async () => { await execa('qemu-img', args); },
    reference: async () => { await execa(QBC_IMG, args); },
  });
  return [
    { name: 'info of a json: name (qcow2 over file)', ...both(['info', '--output=json', json]) },
    { name: 'info --image-opts (raw window)', ...both(['info', '--output=json', '--image-opts', opts]) },
    { name: 'info null-co://', ...both(['info', '--output=json', 'null-co://']) },
  ];
};
