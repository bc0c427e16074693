@format:vpc @spec:vpc.subformat
Feature: vpc images made by qemu-img, read and written by the implementation
  The manual: vpc is the image format of Virtual PC, "fixed" (the data then a footer) or
  "dynamic" (a block allocation table of 2 MiB blocks, allocated as they are written).
  Here qemu-img and qemu-io make the image, so an implementation that cannot create vpc
  images is judged too: one guest request may cross a 2 MiB block, and a write into a
  block that is not allocated yet must allocate it. The oracle reads the result back.

  @op:read
  Scenario Outline: one read across two blocks of a <subformat> image returns the guest bytes
    Given a 10514432 bytes vpc image made by qemu-img with "subformat=<subformat>" and written by qemu-io with:
      | offset | length | pattern |
      | 1 MiB  | 2 MiB  | 0x5a    |
    Then these ranges read back in one open:
      | offset  | length  | pattern |
      | 1 MiB   | 2 MiB   | 0x5a    |
      | 3 MiB   | 2 MiB   | zeroes  |

    Examples:
      | subformat |
      | fixed     |
      | dynamic   |

  @op:write
  Scenario Outline: a write into <where> block of a <subformat> image reads back in the oracle
    Given a 10514432 bytes vpc image made by qemu-img with "subformat=<subformat>" and written by qemu-io with:
      | offset | length | pattern |
      | 0      | 64 KiB | 0x11    |
    When the implementation writes in one open:
      | offset   | length | pattern |
      | <offset> | 8 KiB  | 0x22    |
    Then the oracle reads these ranges back:
      | offset   | length | pattern |
      | 0        | 4 KiB  | 0x11    |
      | <offset> | 8 KiB  | 0x22    |

    Examples:
      | subformat | where          | offset |
      | fixed     | a written      | 4 KiB  |
      | dynamic   | an allocated   | 4 KiB  |
      | dynamic   | an unallocated | 5 MiB  |

  @op:info
  Scenario Outline: the info of a <subformat> image shows the size in its footer
    Given a 10514432 bytes vpc image made by qemu-img with "subformat=<subformat>" and written by qemu-io with:
      | offset | length | pattern |
      | 0      | 4 KiB  | 0x11    |
    Then the image info reports a virtual size of 10514432 bytes
    And the oracle reports the same info

    Examples:
      | subformat |
      | fixed     |
      | dynamic   |

  @op:info
  Scenario: the info of a dynamic image shows its 2 MiB blocks as the cluster size
    Given a 10514432 bytes vpc image made by qemu-img with "subformat=dynamic" and written by qemu-io with:
      | offset | length | pattern |
    Then the image info reports "cluster-size" 2097152
