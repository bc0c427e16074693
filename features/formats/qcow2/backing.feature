@format:qcow2 @spec:qcow2.backing_file
Feature: a qcow2 image backed by a base image
  backing_file names a base image: the new image records only what differs from it and
  reads everything else from the base (copy on write). backing_fmt names the base's format.

  @op:create @spec:qcow2.backing_fmt
  Scenario: the top image reads the base's data until it is overwritten
    Given a 64 MiB qcow2 image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 8 MiB
    And a qcow2 image "top" backed by "base"
    When 1 MiB of pattern 0xa5 is written to "top" at offset 9 MiB
    Then the 1 MiB of "top" at offset 8 MiB reads back as pattern 0x5a
    And the 1 MiB of "top" at offset 9 MiB reads back as pattern 0xa5
    And the 1 MiB of "base" at offset 9 MiB reads back as pattern 0x5a
    And the map shows 1 MiB at offset 8 MiB as data from the backing file at depth 1
    And the map shows 1 MiB at offset 9 MiB as data
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:create @spec:qcow2.backing_fmt
  Scenario: the top image records its base and the base's format
    Given a 64 MiB qcow2 image "base"
    When a qcow2 image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename" "base.qcow2"
    And the info of "top" reports "backing-filename-format" "qcow2"
    And the info of "top" reports a virtual size of 64 MiB
    And the oracle reports the same info for "top"

  @op:create
  Scenario: a raw base image
    Given a 64 MiB raw image "base"
    And 1 MiB of pattern 0x33 written to "base" at offset 0
    When a qcow2 image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename-format" "raw"
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x33
    And the oracle reads the same guest bytes from "top"

  @op:create
  Scenario: a top image larger than its base reads zeroes past the base's end
    Given a 1 MiB qcow2 image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a 4 MiB qcow2 image "top" is created backed by "base"
    Then creation succeeds
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the 3 MiB of "top" at offset 1 MiB reads back as zeroes
    And the oracle reads the same guest bytes from "top"

  @op:write
  Scenario: a chain of three images reads each layer's newest data
    Given a 64 MiB qcow2 image "base"
    And 3 MiB of pattern 0x01 written to "base" at offset 0
    And a qcow2 image "mid" backed by "base"
    And 2 MiB of pattern 0x02 written to "mid" at offset 1 MiB
    And a qcow2 image "top" backed by "mid"
    When 1 MiB of pattern 0x03 is written to "top" at offset 2 MiB
    Then the 1 MiB of "top" at offset 0 reads back as pattern 0x01
    And the 1 MiB of "top" at offset 1 MiB reads back as pattern 0x02
    And the 1 MiB of "top" at offset 2 MiB reads back as pattern 0x03
    And the 1 MiB of "mid" at offset 2 MiB reads back as pattern 0x02
    And the info of "top" shows a backing chain of 3 images
    And the map shows 1 MiB at offset 0 as data from the backing file at depth 2
    And the map shows 1 MiB at offset 1 MiB as data from the backing file at depth 1
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:write
  Scenario: discarding in the top image goes back to the base's data or to zeroes
    Given a 64 MiB qcow2 image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    And a qcow2 image "top" backed by "base"
    And 1 MiB of pattern 0xa5 written to "top" at offset 0
    When 1 MiB at offset 0 is zeroed
    Then the 1 MiB of "top" at offset 0 reads back as zeroes
    And the 1 MiB of "base" at offset 0 reads back as pattern 0x5a
    And the oracle finds "top" consistent

  @op:create @spec:qcow2.backing_fmt
  Scenario: qemu 7.2 needs the backing format
    Given a 64 MiB qcow2 image "base"
    When a qcow2 image "top" is created backed by "base" without a backing format
    Then creation fails naming "backing_fmt" or "backing format"
    And no image file is left behind

  @op:create
  Scenario: the base image must exist
    When a qcow2 image "top" is created backed by the missing file "nowhere.qcow2"
    Then creation fails naming "nowhere.qcow2"
    And no image file is left behind

  @op:create @spec:qcow2.backing_fmt
  Scenario: backing_file and backing_fmt given as options
    Given a 64 MiB qcow2 image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a qcow2 image is created with "backing_file=base.qcow2,backing_fmt=qcow2" and no size
    Then creation succeeds
    And the image info reports "backing-filename" "base.qcow2"
    And the 1 MiB at offset 0 reads back as pattern 0x5a

  @op:convert
  Scenario: a conversion onto a base keeps the source's guest bytes
    Given a 64 MiB qcow2 image "base"
    And 4 MiB of pattern 0x5a written to "base" at offset 0
    And a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0xa5 written to "source" at offset 8 MiB
    When image "source" is converted to qcow2 as "delta" backed by "base"
    Then the info of "delta" reports "backing-filename" "base.qcow2"
    And images "source" and "delta" have the same guest bytes
    And the map shows 1 MiB at offset 8 MiB as data
    And the 4 MiB of "delta" at offset 0 reads back as zeroes
    And the oracle finds "delta" consistent
    And the oracle reads the same guest bytes from "delta"
