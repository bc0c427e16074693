@protocol:gluster @spec:gluster
Feature: GlusterFS: images on a volume, through libgfapi's filename forms
  The manual's GlusterFS section: gluster[+tcp|+unix]://[HOST[:PORT]]/VOLUME/PATH[?socket=...],
  the json: form with a server list of tcp and unix entries, and the file.server.N.* options;
  qemu-img create makes an image on the volume. The peer is a private glusterd on 127.0.0.1
  (its own port and unix socket) with a one-brick volume. Both directions are checked: what the
  implementation makes and writes through the volume, the oracle writes more into through the
  volume and reads from the brick, where the volume keeps its files as plain files; what the
  oracle wrote, the implementation reads back through the volume.
  An open through qemu's libgfapi takes about 10 s (its glfs_fini waits for a timer), so the steps
  run their rows at once (a qcow2 create opens the image twice, so the implementation makes the
  qcow2 image and the oracle writes it, to keep each wait at two opens).

  @spec:gluster.uri @spec:gluster.json @spec:gluster.options @spec:gluster.transport @spec:gluster.port @spec:gluster.create
  Scenario: a raw and a qcow2 image made on a one-brick volume, the raw one written through every filename form, both read back the other way
    Given a private glusterd with a one-brick volume
    When the implementation creates and writes these images on the volume at once:
      | image      | format | action | size  | offset  | length | pattern | form |
      | disk.raw   | raw    | create | 1 MiB |         |        |         | gluster://{host}:{port}/{volume}/{image} |
      | disk.raw   | raw    | write  |       | 0       | 64 KiB | 0x11    | gluster+tcp://{host}:{port}/{volume}/{image} |
      | disk.raw   | raw    | write  |       | 256 KiB | 64 KiB | 0x22    | gluster+unix:///{volume}/{image}?socket={socket} |
      | disk.raw   | raw    | write  |       | 512 KiB | 64 KiB | 0x33    | json:{"driver":"raw","file":{"driver":"gluster","volume":"{volume}","path":"{image}","server":[{"type":"tcp","host":"{host}","port":"{port}"},{"type":"unix","socket":"{socket}"}]}} |
      | disk.raw   | raw    | write  |       | 768 KiB | 64 KiB | 0x44    | driver=raw,file.driver=gluster,file.volume={volume},file.path={image},file.server.0.type=unix,file.server.0.path={socket} |
      | disk.qcow2 | qcow2  | create | 4 MiB |         |        |         | gluster+tcp://{host}:{port}/{volume}/{image} |
    And the oracle writes through the volume at once:
      | image      | format | offset  | length | pattern | form |
      | disk.raw   | raw    | 128 KiB | 64 KiB | 0x55    | gluster://{host}:{port}/{volume}/{image} |
      | disk.qcow2 | qcow2  | 1 MiB   | 64 KiB | 0x66    | gluster+unix:///{volume}/{image}?socket={socket} |
    Then the implementation reads through the volume at once:
      | image      | format | offset  | length | pattern | form |
      | disk.raw   | raw    | 0       | 64 KiB | 0x11    | gluster+unix:///{volume}/{image}?socket={socket} |
      | disk.raw   | raw    | 128 KiB | 64 KiB | 0x55    | gluster+unix:///{volume}/{image}?socket={socket} |
      | disk.raw   | raw    | 768 KiB | 64 KiB | 0x44    | gluster+unix:///{volume}/{image}?socket={socket} |
      | disk.qcow2 | qcow2  | 0       | 1 MiB  | 0x00    | gluster://{host}:{port}/{volume}/{image} |
      | disk.qcow2 | qcow2  | 1 MiB   | 64 KiB | 0x66    | gluster://{host}:{port}/{volume}/{image} |
    And the oracle reads from the brick:
      | image      | format | offset  | length | pattern |
      | disk.raw   | raw    | 0       | 64 KiB | 0x11    |
      | disk.raw   | raw    | 128 KiB | 64 KiB | 0x55    |
      | disk.raw   | raw    | 256 KiB | 64 KiB | 0x22    |
      | disk.raw   | raw    | 512 KiB | 64 KiB | 0x33    |
      | disk.raw   | raw    | 576 KiB | 64 KiB | 0x00    |
      | disk.raw   | raw    | 768 KiB | 64 KiB | 0x44    |
      | disk.qcow2 | qcow2  | 0       | 1 MiB  | 0x00    |
      | disk.qcow2 | qcow2  | 1 MiB   | 64 KiB | 0x66    |
      | disk.qcow2 | qcow2  | 1088 KiB | 3008 KiB | 0x00 |
