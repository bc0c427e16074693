@format:vmdk
Feature: vmdk backing files (parentCID and parentFileNameHint)
  A vmdk overlay names its base in the descriptor's parentFileNameHint and records the
  base's CID as parentCID; reads of unallocated grains fall through to the base.

  @op:create @op:read @spec:vmdk @spec:vmdk.backing_file
  Scenario: an overlay of a vmdk base reads the base's data and its own write across a grain boundary
    Given a 2 MiB vmdk image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a vmdk image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename" "base.vmdk"
    And the info of "top" shows a backing chain of 2 images
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a
    When 8 KiB of pattern 0x22 is written to "top" at offset 60 KiB
    Then the 8 KiB of "top" at offset 60 KiB reads back as pattern 0x22
    And the 60 KiB of "top" at offset 0 reads back as pattern 0x5a
    And the 956 KiB of "top" at offset 68 KiB reads back as pattern 0x5a
    And the 1 MiB of "base" at offset 0 reads back as pattern 0x5a

  @op:create @spec:vmdk.backing_fmt
  Scenario: a base that is not vmdk is refused
    Given a 2 MiB raw image "base"
    When a vmdk image "top" is created backed by "base"
    Then creation fails naming "vmdk"

  @op:create @spec:vmdk.backing_fmt
  Scenario: qemu 7.2 needs the backing format
    Given a 2 MiB vmdk image "base"
    When a vmdk image "top" is created backed by "base" without a backing format
    Then creation fails naming "backing format" or "backing_fmt"
