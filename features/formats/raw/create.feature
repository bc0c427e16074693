@format:raw @op:create
Feature: creating raw images
  A raw image is the guest disk byte for byte. Where the host file system supports
  holes, only written sectors take space. The preallocation option chooses how much
  space is reserved up front: off (none), falloc (posix_fallocate) or full (zeroes
  written to the storage).

  @spec:raw
  Scenario: a new raw image is its virtual size and reads as zeroes
    When a 64 MiB raw image is created
    Then creation succeeds
    And the image info reports "format" "raw"
    And the image info reports a virtual size of 64 MiB
    And the image file is at least 64 MiB long
    And the whole disk reads back as zeroes
    And the oracle reports the same info
    And the oracle reads the same guest bytes

  @spec:raw.size
  Scenario Outline: a raw image of <size> has exactly that virtual size
    When a <size> raw image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the oracle reports the same info

    Examples:
      | size      |
      | 0 bytes   |
      | 512 bytes |
      | 1 MiB     |
      | 1 GiB     |

  @spec:raw
  Scenario: only written sectors of a raw image take space on the host
    Given a 1 GiB raw image
    When 1 MiB of pattern 0x5a is written at offset 512 MiB
    Then the image file occupies less than 16 MiB on the host
    And the 1 MiB at offset 512 MiB reads back as pattern 0x5a
    And the 1 MiB at offset 0 reads back as zeroes
    And the oracle reads the same guest bytes

  @spec:raw.preallocation
  Scenario: preallocation=off reserves no space
    When a 64 MiB raw image is created with "preallocation=off"
    Then creation succeeds
    And the image file occupies less than 1 MiB on the host
    And the whole disk reads back as zeroes

  @spec:raw.preallocation
  Scenario Outline: preallocation=<mode> reserves the whole disk on the host
    When a 64 MiB raw image is created with "preallocation=<mode>"
    Then creation succeeds
    And the image file occupies at least 64 MiB on the host
    And the image info reports a virtual size of 64 MiB
    And the whole disk reads back as zeroes
    And the oracle reads the same guest bytes

    Examples:
      | mode   |
      | falloc |
      | full   |

  @spec:raw.preallocation
  Scenario Outline: preallocation=<mode> is refused for raw
    When a 64 MiB raw image is created with "preallocation=<mode>"
    Then creation fails naming "preallocation"
    And no image file is left behind

    Examples:
      | mode     |
      | metadata |
      | bogus    |
      | FULL     |

  @spec:raw
  Scenario: raw has no cluster_size option
    When a 64 MiB raw image is created with "cluster_size=4096"
    Then creation fails naming "cluster_size"
    And no image file is left behind

  @spec:raw.size
  Scenario: the size is given only once
    When a 64 MiB raw image is created with "size=1M"
    Then creation fails naming "size"
    And no image file is left behind

  @spec:raw.size
  Scenario: a raw image needs a size
    When a raw image is created with "" and no size
    Then creation fails naming "size"
    And no image file is left behind

  @spec:raw.size
  Scenario: the size option gives the virtual size
    When a raw image is created with "size=2M" and no size
    Then creation succeeds
    And the image info reports a virtual size of 2 MiB

  @spec:raw.size
  Scenario Outline: a size of "<size>" is refused
    When a raw image is created with "size=<size>" and no size
    Then creation fails naming "size"
    And no image file is left behind

    Examples:
      | size |
      | 1Z   |
      | -1   |
      | ten  |

  @spec:raw.nocow @qemu-since:2.1
  Scenario Outline: nocow=<value> is accepted (it only has an effect on btrfs)
    When a 64 MiB raw image is created with "nocow=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes

    Examples:
      | value |
      | on    |
      | off   |

  @spec:raw.nocow
  Scenario: nocow takes on or off
    When a 64 MiB raw image is created with "nocow=maybe"
    Then creation fails naming "nocow"
    And no image file is left behind

  @spec:raw.extent_size_hint @qemu-since:5.1
  Scenario: an extent size hint is accepted
    When a 64 MiB raw image is created with "extent_size_hint=1M"
    Then creation succeeds
    And the image info reports a virtual size of 64 MiB

  @spec:raw.extent_size_hint
  Scenario: an extent size hint must be a size
    When a 64 MiB raw image is created with "extent_size_hint=big"
    Then creation fails naming "extent_size_hint"
    And no image file is left behind
