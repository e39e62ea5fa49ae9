!> STAND-IN for a host model that owns OASIS itself, as NEMO with key_oasis3
!! does: it calls oasis_init_comp / oasis_get_localcomm, hands the component
!! to oceanbridge with obr_init_from_oasis, and calls oasis_enddef and
!! oasis_terminate itself. The call order is the one obridge.F90 documents:
!!   oasis_init_comp -> obr_init_from_oasis -> obr_def_* -> obr_enddef
!!   -> host's oasis_enddef (aborts with 'enddef called already' if
!!      obr_enddef had called it) -> obr_put/obr_get -> obr_finalize -> oasis_terminate
!! Exchanges the fields of exchange_ocean.F90 with tests/oasis/worker_standin.F90.
!! Ocean ranks split the grid along j. Usage: host_standin NX NY NLEV NSTEPS [SKIP0]
!! SKIP0 = 1: skip the gets of step 0 (t = 0), which OASIS forbids: the bridge must say so.
program host_standin
   use mod_oasis
   use mpi
   use obridge
   use standin_fields
   implicit none
   integer :: nx, ny, nlev, nsteps, comp_id, comm, rank, nranks, ierr, kinfo
   integer :: i0, j0, ni, nj, step, nbad, nrecv, id(5)
   real(dp), allocatable :: a(:, :, :), b(:, :, :)
   logical :: skip0

   id = 0
   id(:min(5, command_argument_count())) = int_args(min(5, command_argument_count()))
   nx = id(1); ny = id(2); nlev = id(3); nsteps = id(4)
   skip0 = id(5) == 1
   call oasis_init_comp(comp_id, 'ocean', ierr)                 ! the host's own OASIS start
   call oasis_get_localcomm(comm, ierr)
   call MPI_Comm_rank(comm, rank, ierr)
   call MPI_Comm_size(comm, nranks, ierr)
   call obr_init_from_oasis('ocean', comp_id, comm)
   call obr_def_time(1, 1._dp)                                 ! t = step seconds
   i0 = 0
   ni = nx
   call split(ny, nranks, rank, j0, nj)
   call obr_def_partition(nx, ny, i0, j0, ni, nj)
   call obr_def_field('a2', OBR_OUT, 1, id(1))
   call obr_def_field('b3', OBR_OUT, nlev, id(2))
   call obr_def_field('c2', OBR_IN, 1, id(3))
   call obr_def_field('d3', OBR_IN, nlev, id(4))
   call obr_enddef(kinfo)
   if (kinfo /= OBR_OK) call obr_abort('host stand-in: obr_enddef: '//obr_last_error())
   call oasis_enddef(ierr)                                      ! the host ends the definitions
   allocate (a(ni, nj, 1), b(ni, nj, nlev))
   nbad = 0
   nrecv = 0
   do step = 0, nsteps - 1
      call fill(a, 1, step, i0, j0)
      call fill(b, 2, step, i0, j0)
      call obr_put(id(1), step, a(:, :, 1))
      call obr_put(id(2), step, b)
      a = -1
      b = -1
      if (skip0 .and. step == 0) cycle
      call obr_get(id(3), step, a, kinfo)
      nrecv = nrecv + merge(1, 0, kinfo == OBR_RECVD)
      call obr_get(id(4), step, b, kinfo)
      nrecv = nrecv + merge(1, 0, kinfo == OBR_RECVD)
      nbad = nbad + mismatches(a, 3, step, i0, j0) + mismatches(b, 4, step, i0, j0)
   end do
   call obr_finalize()
   print '(a,i0,a,i0,a,i0,a,i0)', 'host stand-in rank ', rank, ': receptions ', nrecv, ' of ', 2*nsteps, &
      ', wrong values ', nbad
   call oasis_terminate(ierr)                                   ! the host leaves OASIS
end program host_standin
