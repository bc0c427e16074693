@format:qcow @spec:qcow.backing_file
Feature: qcow backing files
  An overlay reads what it has not written from its backing file. qcow copies nothing
  from the base on a write, which is why an overlay gets 512-byte clusters: every write
  the block layer hands it fills whole clusters. qcow does not store the backing format
  (the base is probed); QEMU 7.2 still needs it given at creation.

  @op:create @op:read
  Scenario Outline: an overlay of a <base> base reads the base's data
    Given a 64 MiB <base> image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    When a qcow image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename" "base.<base>"
    And the info of "top" reports "cluster-size" 512
    And the info of "top" shows a backing chain of 2 images
    And the 2 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes from "top"
    And the oracle reports the same info for "top"

    Examples:
      | base  |
      | raw   |
      | qcow  |
      | qcow2 |

  @op:write @op:read
  Scenario: a write to the overlay keeps the base's data around it
    Given a 64 MiB raw image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    And a qcow image "top" backed by "base"
    When 1000 bytes of pattern 0x22 is written to "top" at offset 5000 bytes
    Then the 1000 bytes of "top" at offset 5000 bytes reads back as pattern 0x22
    And the 5000 bytes of "top" at offset 0 reads back as pattern 0x5a
    And the 1 MiB of "top" at offset 6000 bytes reads back as pattern 0x5a
    And the 2 MiB of "base" at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes from "top"

  @op:write @op:read
  Scenario: a zeroed range of the overlay hides the base
    Given a 64 MiB raw image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    And a qcow image "top" backed by "base"
    When 1 MiB at offset 0 is zeroed
    Then the 1 MiB of "top" at offset 0 reads back as zeroes
    And the 1 MiB of "top" at offset 1 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes from "top"

  @op:create @op:read
  Scenario: an overlay bigger than its base reads zeroes past the base's end
    Given a 1 MiB raw image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a 4 MiB qcow image "top" is created backed by "base"
    Then creation succeeds
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the 3 MiB of "top" at offset 1 MiB reads back as zeroes
    And the oracle reads the same guest bytes from "top"

  @op:create @spec:qcow.backing_fmt
  Scenario: qemu 7.2 needs the backing format
    Given a 64 MiB raw image "base"
    When a qcow image "top" is created backed by "base" without a backing format
    Then creation fails naming "backing_fmt" or "backing format"
