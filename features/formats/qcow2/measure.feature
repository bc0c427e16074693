@format:qcow2 @op:measure @spec:qcow2
Feature: measuring the size a qcow2 image needs
  qemu-img measure says how large a file must be: "required" for the data and metadata
  the image would have, "fully-allocated" if every cluster were allocated.

  Scenario Outline: a new <size> image with "<options>"
    When the size of a <size> qcow2 image with "<options>" is measured
    Then the measured required size is at most the fully allocated size
    And the measured fully allocated size is at least <size>
    And the oracle measures the same sizes

    Examples:
      | size   | options                  |
      | 64 MiB |                          |
      | 64 MiB | cluster_size=512         |
      | 64 MiB | cluster_size=2M          |
      | 1 GiB  | refcount_bits=64         |
      | 1 GiB  | preallocation=metadata   |
      | 64 MiB | preallocation=full       |
      | 64 MiB | compat=0.10              |
      | 64 MiB | extended_l2=on           |

  Scenario: an empty image needs less than its disk
    When the size of a 1 GiB qcow2 image with "" is measured
    Then the measured required size is less than 1 MiB
    And the measured fully allocated size is at least 1 GiB

  Scenario Outline: an image created with preallocation=<mode> fits the measure
    Given a 64 MiB qcow2 image created with "preallocation=<mode>"
    When the size of a 64 MiB qcow2 image with "preallocation=<mode>" is measured
    Then the image file is no longer than the measured fully allocated size

    Examples:
      | mode     |
      | off      |
      | metadata |
      | falloc   |
      | full     |

  Scenario Outline: preallocation=<mode> counts the whole disk as required
    When the size of a 64 MiB qcow2 image with "preallocation=<mode>" is measured
    Then the measured required size is at least 64 MiB
    And the oracle measures the same sizes

    Examples:
      | mode   |
      | falloc |
      | full   |

  Scenario: measuring an image for conversion counts its data
    Given a 64 MiB qcow2 image
    And 8 MiB of pattern 0x5a written at offset 0
    When the size of the image converted to qcow2 is measured
    Then the measured required size is at least 8 MiB
    And the measured required size is less than 16 MiB
    And the oracle measures the same sizes
    When the image is converted to qcow2
    Then the image file is no longer than the measured required size
