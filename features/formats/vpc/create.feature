@format:vpc @op:create
Feature: creating Virtual PC (vpc, VHD) images
  A VHD's disk size is what its CHS geometry (cylinders x heads x sectors of 512 bytes)
  holds, so a requested size is rounded up to the next geometry the VHD specification's
  algorithm gives; force_size keeps the size exact (and marks the image for readers that
  use the footer's size). subformat=dynamic (the default) allocates 2 MiB blocks on first
  write; subformat=fixed is the raw disk followed by a footer.

  @spec:vpc @spec:vpc.size
  Scenario Outline: a <size> vpc image holds <virtual> (the next CHS geometry)
    When a <size> vpc image is created
    Then creation succeeds
    And the image info reports a virtual size of <virtual>
    And the image info reports "cluster-size" 2097152
    And the whole disk reads back as zeroes
    And the oracle reports the same info
    And the oracle reads the same guest bytes

    Examples:
      | size          | virtual        |
      | 0             | 0              |
      | 513 bytes     | 34816 bytes    |
      | 10 MiB        | 10514432 bytes |

  @spec:vpc.size
  Scenario Outline: a <size> vpc image holds <virtual> bytes (geometry <geometry>)
    When a <size> vpc image is created
    Then creation succeeds
    And the image info reports a virtual size of <virtual>
    And the file's "vpc geometry" is "<geometry>"
    And the oracle reports the same info

    Examples:
      | size    | virtual          | geometry      |
      | 3 GiB   | 3221471232 bytes | 6242/16/63    |
      | 127 GiB | 136365219840 bytes | 65279/16/255 |

  @spec:vpc.size
  Scenario Outline: a <size> image keeps its size (beyond the largest CHS geometry)
    When a <size> vpc image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the file's "vpc geometry" is "65535/16/255"
    And the oracle reports the same info

    Examples:
      | size      |
      | 2040 GiB  |

  @spec:vpc.size
  Scenario Outline: a size of <size> is refused (more than 2040 GiB)
    When a <size> vpc image is created with "<options>"
    Then creation fails naming "size"
    And no image file is left behind

    Examples:
      | size     | options       |
      | 2041 GiB |               |
      | 3000 GiB | force_size=on |

  @spec:vpc.subformat @spec:vpc.force_size
  Scenario Outline: "<options>" makes the same file as the oracle outside the random fields
    When a <size> vpc image is made with "<options>" for comparison
    Then the oracle makes the same file outside the random fields
    And the oracle reports the same info
    And the oracle reports the same map

    Examples:
      | size          | options                       |
      | 1 MiB         | subformat=dynamic             |
      | 5 MiB         | subformat=fixed               |
      | 1000000 bytes | force_size=on                 |
      | 1000000 bytes | subformat=fixed,force_size=on |

  @spec:vpc.subformat
  Scenario: a fixed image is the disk followed by a 512-byte footer
    When a 1 MiB vpc image is created with "subformat=fixed"
    Then creation succeeds
    And the file is 1079808 bytes long
    And the file's "vpc disk type" is "2"
    And the image info reports a virtual size of 1079296 bytes
    And the oracle reports the same info

  @spec:vpc.subformat
  Scenario: a dynamic image is a footer, a header, a BAT and the footer again
    When a 1 MiB vpc image is created with "subformat=dynamic"
    Then creation succeeds
    And the file is 2560 bytes long
    And the file's "vpc disk type" is "3"

  @spec:vpc.force_size
  Scenario Outline: force_size=<value> keeps the size exact and marks the footer
    When a 1000000 bytes vpc image is created with "force_size=<value>"
    Then creation succeeds
    And the image info reports a virtual size of <virtual>
    And the file's "vpc creator" is "<creator>"
    And the file's "vpc geometry" is "<geometry>"
    And the oracle reports the same info

    Examples:
      | value | virtual       | creator | geometry     |
      | on    | 1000448 bytes | qem2    | 65535/16/255 |
      | off   | 1009664 bytes | qemu    | 29/4/17      |

  @spec:vpc.subformat
  Scenario Outline: subformat=<value> is refused
    When a 1 MiB vpc image is created with "subformat=<value>"
    Then creation fails naming "subformat"
    And no image file is left behind

    Examples:
      | value        |
      | Dynamic      |
      | differencing |

  @spec:vpc.force_size
  Scenario: force_size=abc is refused
    When a 1 MiB vpc image is created with "force_size=abc"
    Then creation fails naming "force_size"
    And no image file is left behind

  @spec:vpc
  Scenario Outline: an option of other formats, <option>, is refused
    When a 1 MiB vpc image is created with "<option>"
    Then creation fails naming "<name>"

    Examples:
      | option          | name          |
      | block_size=1M   | block_size    |

  Scenario Outline: the file option <option> is accepted and leaves the same image
    When a 1 MiB vpc image is made with "<option>" for comparison
    Then the oracle makes the same file outside the random fields
    And the oracle reports the same info

    @spec:vpc.preallocation
    Examples: preallocation (QEMU passes it to the new file, then writes the image over it)
      | option             |
      | preallocation=full |

    @spec:vpc.nocow
    Examples: nocow (a btrfs attribute; no effect here)
      | option   |
      | nocow=on |

    @spec:vpc.extent_size_hint
    Examples: extent_size_hint (an XFS hint; no effect here)
      | option             |
      | extent_size_hint=0 |
