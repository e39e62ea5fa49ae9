!> Stand-ins for the ocean and the worker: fixed grid, fields SSH (1 level) and U (3 levels), values
!> that encode member, field, level, point and step, so the receiver can check every one exactly.
module standin_common
   use mod_oasis
   implicit none
   integer, parameter :: nx = 8, ny = 6, nsteps = 12, dt = 100, nf = 2
   character(len=8) :: fname(nf) = [character(len=8) :: 'SSH', 'U']
   integer :: flev(nf) = [1, 3]
contains
   subroutine box(comm, part_id, j0, nj)
      integer, intent(in) :: comm
      integer, intent(out) :: part_id, j0, nj
      integer :: rank, nprocs, ierr, paral(5)
      call MPI_Comm_rank(comm, rank, ierr); call MPI_Comm_size(comm, nprocs, ierr)
      nj = ny / nprocs; j0 = rank * nj
      if (rank == nprocs - 1) nj = ny - j0
      paral = [2, j0 * nx, nx, nj, nx]
      call oasis_def_partition(part_id, paral, ierr, nx * ny)
   end subroutine
   real(8) function val(member, f, lev, i, j, kt)
      integer, intent(in) :: member, f, lev, i, j, kt
      val = member * 1.d6 + f * 1.d5 + lev * 1.d4 + j * 100 + i + kt * 1.d-3
   end function
end module standin_common
