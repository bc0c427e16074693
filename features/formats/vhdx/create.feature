@format:vhdx @op:create
Feature: creating Hyper-V (vhdx) images
  A VHDX file is a 1 MiB header section (file identifier, two headers, two region
  tables), the log, the block allocation table, the metadata and the payload blocks.
  block_size is a power of two from 1 MiB to 256 MiB (0: chosen from the size); log_size
  is at least 1 MiB, in whole MiB; block_state_zero=on (the default) starts every block
  as ZERO; subformat=fixed gives every block its place at creation.

  @spec:vhdx @spec:vhdx.block_size @spec:vhdx.size
  Scenario Outline: a <size> vhdx image gets <block> blocks when block_size is 0
    When a <size> vhdx image is created with "block_size=0"
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the image info reports "cluster-size" <block>
    And the check reports no corruption
    And the oracle reports the same info
    And the oracle finds the image consistent

    Examples:
      | size    | block    |
      | 4 MiB   | 8388608  |
      | 2 GiB   | 16777216 |
      | 200 GiB | 33554432 |

  @spec:vhdx.subformat @spec:vhdx.block_state_zero @spec:vhdx.block_size @spec:vhdx.log_size
  Scenario Outline: "<options>" makes the same file as the oracle outside the random fields
    When a 4 MiB vhdx image is made with "<options>" for comparison
    Then the oracle makes the same file outside the random fields
    And the whole disk reads back as zeroes
    And the oracle reports the same info
    And the oracle finds the image consistent

    Examples:
      | options                               |
      | subformat=dynamic                     |
      | subformat=fixed                       |
      | block_state_zero=off                  |
      | subformat=fixed,block_state_zero=off  |
      | block_size=1M,log_size=2M             |
      | block_size=256M                       |

  @spec:vhdx.block_state_zero
  Scenario Outline: block_state_zero=<value> starts a <subformat> image's blocks in state <state>
    When a 4 MiB vhdx image is created with "subformat=<subformat>,block_state_zero=<value>"
    Then creation succeeds
    And the file's "vhdx first block state" is "<state>"

    Examples:
      | subformat | value | state |
      | dynamic   | on    | 2     |
      | dynamic   | off   | 0     |
      | fixed     | off   | 6     |

  @spec:vhdx.log_size
  Scenario: log_size=4095M is accepted and recorded in the headers
    When a 1 MiB vhdx image is created with "log_size=4095M"
    Then creation succeeds
    And the file's "vhdx log length" is "4293918720"
    And the oracle finds the image consistent

  @spec:vhdx.block_size
  Scenario Outline: block_size=<value> is refused (a power of two from 1 MiB to 256 MiB, or 0)
    When a 4 MiB vhdx image is created with "block_size=<value>"
    Then creation fails naming "block_size"
    And no image file is left behind

    Examples:
      | value |
      | 3M    |
      | 1000  |
      | 512M  |

  @spec:vhdx.log_size
  Scenario Outline: log_size=<value> is refused (at least 1 MiB, in whole MiB)
    When a 4 MiB vhdx image is created with "log_size=<value>"
    Then creation fails naming "log_size"
    And no image file is left behind

    Examples:
      | value |
      | 0     |
      | 1000  |
      | 4G    |

  @spec:vhdx.size
  Scenario: a size of 65 TiB is refused (at most 64 TiB)
    When a 65 TiB vhdx image is created
    Then creation fails naming "size"
    And no image file is left behind

  @spec:vhdx.subformat @spec:vhdx.block_state_zero
  Scenario Outline: <option> is refused
    When a 4 MiB vhdx image is created with "<option>"
    Then creation fails naming "<name>"
    And no image file is left behind

    Examples:
      | option               | name             |
      | subformat=differencing | subformat      |
      | block_state_zero=abc | block_state_zero |

  @spec:vhdx
  Scenario: the manual's name for the format, VHDX, creates a vhdx image
    When a 4 MiB image is created with the format name "VHDX"
    Then creation succeeds

  Scenario Outline: the file option <option> is accepted and leaves the same image
    When a 1 MiB vhdx image is made with "<option>" for comparison
    Then the oracle makes the same file outside the random fields
    And the oracle reports the same info

    @spec:vhdx.preallocation
    Examples: preallocation (QEMU passes it to the new file, then writes the image over it)
      | option             |
      | preallocation=full |

    @spec:vhdx.nocow
    Examples: nocow (a btrfs attribute; no effect here)
      | option   |
      | nocow=on |

    @spec:vhdx.extent_size_hint
    Examples: extent_size_hint (an XFS hint; no effect here)
      | option             |
      | extent_size_hint=0 |
