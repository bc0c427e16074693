@format:vmdk @op:create
Feature: creating VMware (vmdk) images: option values and conflicts
  A vmdk image is a text descriptor and one or more extents (sparse with grain
  directory and grain tables, flat, or stream-optimized with compressed grains).
  These scenarios pin which -o values QEMU 7.2 accepts and which it refuses.

  @spec:vmdk.subformat
  Scenario Outline: subformat=<value> is accepted and reads back as zeroes
    When a 1 MiB vmdk image is created with "subformat=<value>"
    Then creation succeeds
    And the image info reports a virtual size of 1 MiB
    And the whole disk reads back as zeroes

    Examples:
      | value                |
      | monolithicSparse     |
      | monolithicFlat       |
      | twoGbMaxExtentSparse |
      | twoGbMaxExtentFlat   |
      | streamOptimized      |

  @spec:vmdk.subformat
  Scenario: an unknown subformat is refused
    When a 1 MiB vmdk image is created with "subformat=monolithic"
    Then creation fails naming "monolithic"

  @spec:vmdk.adapter_type
  Scenario Outline: adapter_type=<value> is accepted
    When a 1 MiB vmdk image is created with "adapter_type=<value>"
    Then creation succeeds
    And the image info reports a virtual size of 1 MiB

    Examples:
      | value     |
      | ide       |
      | lsilogic  |
      | buslogic  |
      | legacyESX |

  @spec:vmdk.adapter_type
  Scenario: an unknown adapter_type is refused
    When a 1 MiB vmdk image is created with "adapter_type=scsi"
    Then creation fails naming "scsi"

  @spec:vmdk.compat6 @spec:vmdk.hwversion
  Scenario Outline: compat6=<compat6> with hwversion=<hw> is accepted
    When a 1 MiB vmdk image is created with "compat6=<compat6>,hwversion=<hw>"
    Then creation succeeds

    Examples:
      | compat6 | hw        |
      | on      | undefined |
      | off     | 4         |
      | off     | 21        |

  @spec:vmdk.compat6 @spec:vmdk.hwversion
  Scenario: compat6 cannot be combined with hwversion
    When a 1 MiB vmdk image is created with "compat6=on,hwversion=6"
    Then creation fails naming "compat6"

  @spec:vmdk.zeroed_grain
  Scenario Outline: zeroed_grain=on is refused for the flat subformat <value>
    When a 1 MiB vmdk image is created with "zeroed_grain=on,subformat=<value>"
    Then creation fails naming "zeroed grain" or "zeroed_grain"

    Examples:
      | value              |
      | monolithicFlat     |
      | twoGbMaxExtentFlat |

  @spec:vmdk.zeroed_grain @spec:vmdk.toolsversion
  Scenario Outline: zeroed_grain=on and toolsversion are accepted with subformat=<value>
    When a 1 MiB vmdk image is created with "zeroed_grain=on,toolsversion=11333,subformat=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes

    Examples:
      | value            |
      | monolithicSparse |
      | streamOptimized  |

  @spec:vmdk.size
  Scenario: a vmdk image without a size or backing file is refused
    When a vmdk image is created with "subformat=monolithicSparse" and no size
    Then creation fails naming "size"

  @spec:vmdk.compat6 @spec:vmdk.hwversion @spec:vmdk.adapter_type @spec:vmdk.toolsversion
  Scenario Outline: "<options>" is recorded in the descriptor as <line>
    When a 1 MiB vmdk image is created with "<options>"
    Then creation succeeds
    And the vmdk descriptor has the line '<line>'

    Examples:
      | options                                     | line                              |
      | compat6=on                                  | ddb.virtualHWVersion = "6"        |
      | compat6=off                                 | ddb.virtualHWVersion = "4"        |
      | hwversion=abc                               | ddb.virtualHWVersion = "abc"      |
      | adapter_type=lsilogic                       | ddb.adapterType = "lsilogic"      |
      | toolsversion=11333                          | ddb.toolsVersion = "11333"        |
      | subformat=monolithicFlat,adapter_type=buslogic | ddb.adapterType = "buslogic"   |

  # preallocation, nocow and extent_size_hint are options of the file protocol that
  # qemu-img 7.2 lists for vmdk; it passes them to every file it creates (descriptor
  # and extents) and then writes the vmdk over them, so the files come out the same.
  Scenario Outline: the file option <option> is accepted and leaves the same <subformat> files
    Given a 1 MiB vmdk image made with "<option>,subformat=<subformat>" and written in separate opens:
      | offset | length | pattern |
      | 64 KiB | 64 KiB | 0x5a    |
    Then the oracle makes the same vmdk files apart from the CIDs

    @spec:vmdk.preallocation
    Examples: preallocation (off, falloc, full; the extents stay as qemu lays them out)
      | option               | subformat        |
      | preallocation=off    | monolithicSparse |
      | preallocation=falloc | monolithicFlat   |
      | preallocation=full   | monolithicFlat   |
      | preallocation=full   | streamOptimized  |

    @spec:vmdk.nocow
    Examples: nocow (a btrfs attribute; no effect here)
      | option   | subformat          |
      | nocow=on | twoGbMaxExtentFlat |

    @spec:vmdk.extent_size_hint
    Examples: extent_size_hint from 0 to the largest 32-bit hint
      | option                      | subformat            |
      | extent_size_hint=0          | monolithicSparse     |
      | extent_size_hint=4294967295 | twoGbMaxExtentSparse |

  Scenario Outline: the file option value <option> is refused
    When a 1 MiB vmdk image is created with "<option>"
    Then creation fails naming "<name>"
    And no image file is left behind

    @spec:vmdk.preallocation
    Examples: preallocation=metadata is not a mode of the file protocol
      | option                 | name     |
      | preallocation=metadata | metadata |
      | preallocation=sparse   | sparse   |

    @spec:vmdk.nocow
    Examples: nocow is a boolean
      | option      | name  |
      | nocow=maybe | nocow |

    @spec:vmdk.extent_size_hint
    Examples: extent_size_hint is a size below 4 GiB
      | option              | name             |
      | extent_size_hint=4G | extent size hint |
      | extent_size_hint=-1 | extent_size_hint |
