@format:qcow2 @op:read
Feature: qcow2 images made by qemu-img and qemu-io, read by the implementation
  The manual: qcow2 maps guest clusters through L1 and L2 tables; version 3 L2 entries
  carry a zero flag ("reads as zeroes" while the cluster may stay allocated), clusters
  may be compressed, and with extended_l2=on each cluster is split into 32 subclusters
  with their own allocated and zero bits. Here qemu-img and qemu-io make the image, so an
  implementation that only reads qcow2 is judged on one request per case.

  Scenario Outline: <case> reads back as qemu-io wrote it
    Given a 1 MiB qcow2 image made by qemu-img with "<options>" and written by qemu-io with:
      | offset | length | pattern | mode   |
      | 0      | 128 KiB | 0x51   | write  |
      | <at>   | 64 KiB | 0x52    | <mode> |
    Then these ranges read back in one open:
      | offset | length  | pattern  |
      | 0      | 64 KiB  | 0x51     |
      | <at>   | 64 KiB  | <reads>  |
      | 192 KiB | 64 KiB | zeroes   |

    Examples:
      | case                                     | options        | at      | mode       | reads  |
      | data in a new cluster                    |                | 128 KiB | write      | 0x52   |
      | a cluster zeroed with write -z           |                | 64 KiB  | zero       | zeroes |
      | a discarded cluster                      |                | 64 KiB  | discard    | zeroes |
      | a compressed cluster                     |                | 128 KiB | compressed | 0x52   |
      | a zeroed cluster of an extended L2 image | extended_l2=on | 64 KiB  | zero       | zeroes |
